"""The evaluation: generated incidents through the real drafting path meet the issue's bar; report, CLI and demo."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.analysis.writer import NOT_ESTABLISHED
from blametrail.cli import main
from blametrail.incidents.models import Incident
from blametrail.orgs.models import Organization
from blametrail.postmortems.models import Postmortem
from blametrail.scenarios import DEFAULT_SEED, evaluate
from blametrail.scenarios.generator import FAULTS


@pytest.fixture(scope="module")
def report():
    # the seed `blametrail evaluate` uses by default; 4 recurring families (24 incidents) for similar incidents
    return evaluate.run(n=40, seed=DEFAULT_SEED, family_count=4)


def test_similar_incidents_find_their_family(report):
    r = report.resemblance
    assert r is not None and r.members == 16
    assert r.precision_at_3 >= 0.75 and r.top1 >= 0.75, report.table()
    assert "similar incidents: precision@3" in report.table()


def test_forty_scenarios_meet_the_thresholds(report):
    assert len(report.outcomes) == 40 and {o.fault for o in report.outcomes} == set(FAULTS)
    assert report.passed, report.table() + "\n" + evaluate.describe(report.failures())
    overall = report.summary()
    assert overall.hit1 >= 0.85 and overall.hit3 >= 0.95
    assert overall.onset_median <= 2.0 and overall.abstention >= 0.9
    assert not [o for o in report.outcomes if o.fetch_errors]  # every signal came back over HTTP


def test_outcomes_are_scored_against_the_truth(report):
    deploys = [o for o in report.outcomes if o.fault in ("bad_deploy", "config_change")]
    assert all(o.named and o.named.startswith("d") for o in deploys if o.hit1)  # named by scenario deploy key
    for o in report.outcomes:
        if o.fault == "no_culprit":
            assert o.hit1 is None and o.recall is None and o.abstained is not None
        else:
            assert o.abstained is None and o.hit1 is not None and 0 <= o.recall <= 1
            assert not o.hit1 or o.hit3


def test_the_table_shows_every_fault_the_thresholds_and_the_time(report):
    table = report.table()
    for fault in FAULTS:
        assert re.search(rf"^{fault}\s+\d+\s+", table, re.M), fault
    assert re.search(r"^overall\s+40\s+", table, re.M)
    assert table.count("PASS") == 4 and "FAIL" not in table
    assert re.search(r"^40 scenarios evaluated in \d+\.\d s", table, re.M)


def test_a_missed_threshold_fails_the_report(report):
    named = [replace(o, abstained=False) if o.abstained is not None else o for o in report.outcomes]
    failing = replace(report, outcomes=tuple(named))
    assert not failing.passed
    assert re.search(r"^no-culprit: nothing named, low confidence\s+0\.00\s+>= 0\.9\s+FAIL$", failing.table(), re.M)


def test_cli_prints_the_table_and_exits_1_when_a_threshold_fails(report, monkeypatch, capsys):
    calls = []

    def fake_run(**kwargs):
        calls.append(kwargs)
        return report if len(calls) == 1 else replace(report, outcomes=tuple(
            replace(o, hit1=False) if o.hit1 is not None else o for o in report.outcomes))

    monkeypatch.setattr(evaluate, "run", fake_run)
    assert main(["evaluate", "--scenarios", "40"]) == 0
    assert "culprit hit@1" in capsys.readouterr().out
    assert main(["evaluate", "--seed", "7", "--database-url", "sqlite:///x.db"]) == 1
    assert calls[0]["n"] == 40 and calls[0]["seed"] == DEFAULT_SEED
    assert calls[1] | {"progress": None} == {"n": 200, "seed": 7, "database_url": "sqlite:///x.db", "progress": None,
                                             "family_count": 10}
    assert main(["evaluate", "--scenarios", "0"]) == 2


def test_demo_adds_generated_incidents_drafted_from_a_fake_connection(rt):
    from blametrail.demo import SCENARIOS, seed_demo

    seed_demo(rt)
    seed_demo(rt)  # idempotent
    with db.transaction(rt.factory) as session:
        org_id = session.scalar(select(Organization.id).where(Organization.slug == "demo"))
        incidents = session.scalars(select(Incident).where(Incident.org_id == org_id).order_by(Incident.id)).all()
        drafts = {pm.incident_id: pm for pm in session.scalars(select(Postmortem).where(Postmortem.org_id == org_id))}
        assert len(incidents) == 1 + len(SCENARIOS)
        assert all(drafts[i.id].status == "draft" for i in incidents)
        hand, bad_deploy, expired, quiet = (drafts[i.id].sections for i in incidents)
    assert "metric" not in {row["source"] for row in hand["timeline"]}  # the hand-written one keeps its evidence
    assert bad_deploy["root_cause"].startswith("The most likely trigger is deploy")
    assert {"metric", "log"} <= {row["source"] for row in bad_deploy["timeline"]}
    assert "certificate expiry" in expired["root_cause"]
    assert quiet["root_cause"].startswith(NOT_ESTABLISHED) and quiet["confidence"]["level"] == "low"
