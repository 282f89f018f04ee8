"""The built-in engine with metric and log findings: cited timeline rows, root cause, confidence, no-culprit cases."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from blametrail.analysis.findings import analyse_observations
from blametrail.analysis.writer import (
    NOT_ESTABLISHED,
    ranked_causes,
    ranked_suspects,
    root_cause_category,
    write_postmortem,
)
from blametrail.engines.sections import Sections

from .factories import T0, at, commit, deploy, make_pack, update
from .observability import lines, log, metric, series, step

TRACE = ('ERROR charge failed: Traceback (most recent call last): File "/app/payments/client.py", line <*>, '
         "in charge_card TimeoutError")


def _cited(draft: dict) -> set[str]:
    text = json.dumps(draft, ensure_ascii=False)
    cited = {i.strip() for group in re.findall(r"evidence: ([^)]+)\)", text) for i in group.split(",")}
    return cited | {i for row in draft["timeline"] for i in row["evidence"]}


def _bad_deploy_pack(**fields):
    culprit = deploy("deploy_1", -4, version="v2.3", commits=(
        commit("commit_1", "abc1234def5678", "Lower charge_card timeout to 200ms", files=("src/payments/client.py",
                                                                                            "tests/test_client.py")),))
    other = deploy("deploy_2", -1, service="search", version="v9.1")
    values = {"metrics": (metric("metric_1", -2), metric("metric_2", -1, series_name="latency_p99", before=120,
                                                         after=480, unit="ms")),
              "logs": (log("log_1", -2, TRACE, count=240), log("log_2", 1, "user <*> signed in", new=False)),
              "observed": True}
    values.update(fields)
    return replace(make_pack(updates=(), deploys=(culprit, other)), **values)


def test_draft_with_findings_validates_and_cites_only_existing_evidence():
    pack = _bad_deploy_pack()
    draft = write_postmortem(pack)
    Sections.model_validate(draft)
    assert _cited(draft) <= pack.evidence_ids()


def test_metric_onsets_and_new_templates_are_cited_timeline_rows():
    timeline = write_postmortem(_bad_deploy_pack())["timeline"]
    assert [row["at"] for row in timeline] == sorted(row["at"] for row in timeline)
    by_id = {row["evidence"][0]: row for row in timeline if row["evidence"]}
    assert by_id["metric_1"]["source"] == "metric"
    assert by_id["metric_1"]["description"] == "error_rate of checkout rose from 0.2% to 14% at 09:58"
    assert by_id["metric_2"]["description"] == "latency_p99 of checkout rose from 120 ms to 480 ms at 09:59"
    assert by_id["log_1"]["source"] == "log" and by_id["log_1"]["at"] == "2024-05-01T09:58:00Z"
    assert by_id["log_1"]["description"].startswith("New log template in checkout: “ERROR charge failed")
    assert "spiked 40×" in by_id["log_2"]["description"]


def test_root_cause_names_the_top_suspect_and_its_supporting_signals():
    draft = write_postmortem(_bad_deploy_pack())
    cause = draft["root_cause"]
    assert cause.startswith("The most likely trigger is deploy v2.3 of checkout")
    assert "(2 minutes before onset)" in cause and "(evidence: deploy_1, commit_1)" in cause
    assert "touched src/payments/client.py which appears in the new error template log_1" in cause
    assert "Supporting signals: error_rate of checkout rose from 0.2% to 14% at 09:58 (evidence: metric_1)" in cause
    assert "(evidence: log_1)" in cause
    assert draft["confidence"]["level"] == "high"
    assert "metric_1, log_1" in draft["confidence"]["reason"]
    titles = [item["title"] for item in draft["action_items"]]
    test = next(item for item in draft["action_items"] if item["title"].startswith("Add a test that reproduces"))
    assert test["title"].endswith("” in src/payments/client.py") and "charge_card" in test["title"]
    assert test["kind"] == "prevent" and test["evidence"] == ["log_1", "commit_1"]
    assert "Roll checkout back automatically when error_rate moves right after a deploy: it changed 2 minutes after " \
           "v2.3" in titles
    assert not any("tests/test_client.py" in t for t in titles)


def test_category_is_named_when_no_deploy_stands_out():
    unrelated = deploy("deploy_1", -3, version="v2.3", commits=(commit("commit_1", "abc1234def5678", "Tidy README"),))
    expired = log("log_1", -1, "ERROR tls: failed to verify certificate: x509: certificate has expired", count=900)
    pack = replace(make_pack(updates=(), deploys=(unrelated,)), metrics=(metric("metric_1", -1),), logs=(expired,))
    draft = write_postmortem(pack)
    Sections.model_validate(draft)
    cause = draft["root_cause"]
    assert cause.startswith("The evidence points to certificate expiry as the likely cause:")
    assert "(evidence: log_1)" in cause and "No deploy of the affected services explains these errors" in cause
    assert "deploy_1 scored" in cause
    assert draft["confidence"]["level"] == "medium" and "certificate expiry" in draft["confidence"]["reason"]
    assert "certificate expiry" in draft["summary"]
    assert {"title": "Automate certificate renewal and alert well before certificates expire", "priority": "high",
            "suggested_owner": None, "kind": "prevent", "evidence": ["log_1"]} in draft["action_items"]
    assert root_cause_category(pack) == "certificate"
    assert _cited(draft) <= pack.evidence_ids()


def test_no_culprit_with_quiet_findings_is_not_established_and_low():
    noise = deploy("deploy_1", -25, version="v2.3", commits=(commit("commit_1", "abc1234def5678", "Bump logging"),))
    pack = replace(make_pack(updates=(), deploys=(noise,)), observed=True,
                   logs=(log("log_1", 4, "ERROR connection reset by peer", count=4),))
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)
    assert draft["confidence"]["level"] == "low"
    assert root_cause_category(pack) is None
    assert "deploy_1 scored" in draft["root_cause"]


def test_unexplained_metric_change_is_reported_as_missing_explanation():
    pack = replace(make_pack(updates=(), deploys=()), metrics=(metric("metric_1", 1),))
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)
    assert "error_rate of checkout rose from 0.2% to 14% at 10:01 (evidence: metric_1), but no log pattern" in (
        draft["root_cause"])
    assert draft["confidence"]["level"] == "low"


def test_end_to_end_from_raw_observations_is_deterministic():
    start = at(-120)
    raw = lines("GET /api/orders/{n} 200 12ms", -120, 960, every_seconds=10)
    raw += lines('ERROR charge failed: TimeoutError in File "/app/payments/client.py", line {n}, in charge_card',
                 -1, 60)
    metrics, logs = analyse_observations(
        [series(step(n=160, at_index=119), start=start)], sorted(raw, key=lambda line: line.at),
        window_start=start, incident_start=T0, window_end=at(40))
    pack = replace(_bad_deploy_pack(), metrics=metrics, logs=logs)
    first, second = write_postmortem(pack), write_postmortem(pack)
    assert first == second and json.dumps(first) == json.dumps(write_postmortem(replace(pack)))
    assert ranked_suspects(pack)[0].deploy_id == "deploy_1"
    assert first["confidence"]["level"] == "high"
    assert _cited(first) <= pack.evidence_ids()


def test_timeline_is_deduplicated():
    pack = _bad_deploy_pack()
    doubled = replace(pack, logs=pack.logs + pack.logs[:1], updates=(update("upd_1", 5, "Rolling back."),) * 2)
    timeline = write_postmortem(doubled)["timeline"]
    cited = [tuple(row["evidence"]) for row in timeline if row["evidence"]]
    assert len(cited) == len(set(cited))
    assert cited.count(("log_1",)) == 1 and cited.count(("upd_1",)) == 1


def test_ranked_causes_put_the_named_deploy_first():
    causes = ranked_causes(_bad_deploy_pack())
    assert (causes[0].kind, causes[0].key) == ("deploy", "deploy_1")
    assert "metric_1" in causes[0].evidence_ids and "log_1" in causes[0].evidence_ids
