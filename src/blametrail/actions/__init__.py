"""Action items as tracked work: records made from a postmortem's action items, across incidents."""
