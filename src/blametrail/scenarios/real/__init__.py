"""Real public outages, written as facts in our own words, replayed through the HTTP API and scored (docs/evaluation.md).

`incidents` loads and checks the data files, `replay` plays one incident to a running BlameTrail the way a team
would, `score` compares the built-in draft with the facts, `report` renders the table and the thresholds, and
`run` ties them together against a temporary server.
"""
