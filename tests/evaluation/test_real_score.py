"""Scoring a draft against a real incident's facts, and the report's gate (pure: no server, no database)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from blametrail.scenarios.real.incidents import DATA, load
from blametrail.scenarios.real.replay import Replayed
from blametrail.scenarios.real.report import THRESHOLDS, RealReport, Threshold
from blametrail.scenarios.real.score import failed, score


@pytest.fixture(scope="module")
def incident():
    return load(DATA / "cloudflare-2019-07-02-waf-regex.json")


def _iso(at):
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _replayed(incident, draft: dict) -> Replayed:
    """The ids a replay would have produced: deploy_1/commit_1 for the change, alert_N and upd_N in time order."""
    evidence, known = {}, {}
    n = 1
    for e in incident.replayed:
        if e.is_change:
            evidence[e.ref] = "deploy_1"
            known["deploy_1"] = known["commit_1"] = e.at
        else:
            prefix = "alert" if e.kind == "alert" else "upd"
            evidence[e.ref] = f"{prefix}_{n}"
            known[f"{prefix}_{n}"] = e.at
            n += 1
    known["st_90"], known["st_91"] = incident.started_at, incident.resolved_at
    return Replayed(incident_id=1, evidence=evidence, known=known, draft=draft, status="draft", engine="builtin",
                    draft_seconds=0.1)


def _good_draft(incident) -> dict:
    base = _replayed(incident, {})
    rows = [{"at": _iso(e.at), "source": e.kind, "description": e.text, "evidence": [base.evidence[e.ref]]}
            for e in incident.replayed]
    rows.insert(0, {"at": _iso(incident.started_at), "source": "status", "description": "opened",
                    "evidence": ["st_90"]})
    return {
        "severity": "SEV-1",
        "customer_impact": {"duration_minutes": incident.duration_minutes},
        "timeline": rows,
        "root_cause": "A managed WAF rule's regular expression backtracked catastrophically and used all CPU "
                      "(evidence: deploy_1, commit_1).",
        "contributing_factors": ["A safeguard limiting the CPU a regex may use had been removed.",
                                 {"text": "Rules went to every location at once, without a staged rollout."}],
        "what_went_poorly": ["Internal tools and the dashboard sat behind the same failing edge."],
        "action_items": [{"title": "Move the WAF to a regex engine with linear run time", "priority": "high"}],
    }


def test_a_faithful_draft_scores_full_marks_where_it_says_things(incident):
    o = score(incident, _replayed(incident, _good_draft(incident)))
    assert o.error is None and o.duration_exact and o.duration_error == 0
    assert (o.key_cited, o.key_total) == (5, 5) and o.order == 1.0 and o.invented == 0
    assert o.severity_draft == "SEV-1" and o.cause == 1.0 and o.trigger_cited is True
    assert (o.factors_matched, o.factors_total, o.factors_drafted) == (3, 4, 3)  # the regex engine one is not said
    assert o.missed_factors == ("The regular-expression engine gave no guarantee on run time.",)
    assert (o.actions_matched, o.actions_total) == (1, 4)


def test_missing_rows_swapped_rows_and_a_wrong_duration_are_counted(incident):
    draft = _good_draft(incident)
    rows = draft["timeline"]
    draft["timeline"] = [rows[0], rows[2], rows[1]]  # drop most; the first alert before the deploy
    draft["customer_impact"] = {"duration_minutes": incident.duration_minutes + 9}
    o = score(incident, _replayed(incident, draft))
    assert (o.key_cited, o.key_total) == (2, 5)
    assert set(o.missed_key) == {"first-update", "global-kill", "recovered"}
    assert o.order == 0.0  # the two cited key events come in the wrong order
    assert o.duration_error == 9 and not o.duration_exact


def test_rows_citing_nothing_unknown_ids_or_far_times_are_invented(incident):
    draft = _good_draft(incident)
    anchor = incident.started_at
    draft["timeline"] += [
        {"at": _iso(anchor), "source": "update", "description": "no evidence", "evidence": []},
        {"at": _iso(anchor), "source": "metric", "description": "a metric we never had", "evidence": ["metric_4"]},
        {"at": _iso(anchor + timedelta(hours=3)), "source": "deploy", "description": "moved", "evidence": ["deploy_1"]},
        {"at": _iso(anchor + timedelta(minutes=4)), "source": "deploy", "description": "close", "evidence": ["deploy_1"]},
    ]
    o = score(incident, _replayed(incident, draft))
    assert o.invented == 3 and len(o.invented_rows) == 3


def test_severity_trigger_and_cause_misses(incident):
    draft = _good_draft(incident) | {"severity": "SEV-3", "root_cause": "Root cause not established."}
    o = score(incident, _replayed(incident, draft))
    assert o.severity_draft == "SEV-3" and o.trigger_cited is False and o.cause == 0.0


def test_a_failed_replay_scores_worst(incident):
    o = failed(incident, "no draft within 120 s")
    assert o.error and o.key_cited == 0 and o.key_total == 5 and o.trigger_cited is False
    assert score(incident, replace(_replayed(incident, {}), status="failed")).error


def _report(incident, *outcomes_by_split):
    outcomes = []
    for split, draft in outcomes_by_split:
        o = score(incident, _replayed(incident, draft))
        outcomes.append(replace(o, split=split, incident=f"{incident.id}-{len(outcomes)}"))
    return RealReport(outcomes=tuple(outcomes), seconds=1.0)


def test_the_gate_is_the_held_out_part_and_a_worse_draft_fails_it(incident):
    good, bad = _good_draft(incident), _good_draft(incident) | {"timeline": [], "severity": None}
    assert _report(incident, ("holdout", good), ("dev", bad)).passed()  # dev rows are not judged
    failing = _report(incident, ("holdout", bad), ("dev", good))
    assert not failing.passed()
    table = failing.table()
    assert re.search(r"^key events cited\s+0\.00\s+>= 0\.95\s+FAIL$", table, re.M)
    assert "judged on held-out (1 incidents)" in table
    assert re.search(r"^held-out\s+1\s+0\s+1\.00\s+0\.00", table, re.M)
    assert "missed key events: waf-rule-release" in failing.misses()


def test_without_held_out_incidents_the_whole_run_is_judged(incident):
    report = _report(incident, ("dev", _good_draft(incident)))
    assert report.gate()[0].startswith("all (1 incidents")
    assert report.passed()
    strict = THRESHOLDS + (Threshold("action items matched", "actions", ">=", 0.9),)
    assert not report.passed(strict)
