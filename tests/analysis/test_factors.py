"""What went poorly and contributing factors: one rule each, at its named threshold, always cited."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

from blametrail.analysis import factors
from blametrail.analysis.detection import FLAP_MIN_CYCLES, analyse_detection
from blametrail.analysis.evidence import AlertEvidence, MonitorCoverage, MonitorEvidence, PriorIncident
from blametrail.analysis.writer import write_postmortem

from .factories import T0, at, bad_deploy_pack, commit, deploy, make_pack, status, update
from .observability import log, metric


def _draft(pack, **kwargs) -> dict:
    return write_postmortem(pack, **kwargs)


def _rules(pack) -> dict[str, list[str]]:
    draft = _draft(pack)
    return {"poorly": draft["what_went_poorly"], "factors": draft["contributing_factors"]}


def _cited(texts: list[str]) -> set[str]:
    return {i.strip() for t in texts for group in re.findall(r"\(evidence: ([^)]+)\)", t) for i in group.split(",")}


def _opened_by(person: str, minutes: float = 0, recorded_after: float | None = None):
    opened = status("st_1", minutes, "open", actor=person)
    if recorded_after is not None:
        opened = replace(opened, recorded_at=at(recorded_after))
    return opened


def test_time_to_detect_counts_from_the_metric_onset_to_the_first_person():
    pack = replace(make_pack(statuses=(_opened_by("kim"), status("st_2", 23, "resolved"))),
                   metrics=(metric("metric_1", -(factors.SLOW_DETECTION_MINUTES + 2)),))
    found = _rules(pack)["factors"]
    assert ("The impact went unnoticed for 7 minutes: error_rate of checkout rose at 09:53, and the incident was "
            "opened by kim at 10:00 (evidence: metric_1, st_1).") in found
    quick = replace(pack, metrics=(metric("metric_1", -(factors.SLOW_DETECTION_MINUTES - 1)),))
    assert not any("unnoticed" in f for f in _rules(quick)["factors"])


def test_an_incident_opened_late_is_timed_by_when_its_row_was_written():
    pack = make_pack(statuses=(_opened_by("kim", 0, recorded_after=18), status("st_2", 23, "resolved")))
    assert any(f.startswith("The impact went unnoticed for 18 minutes: it started at 10:00, and the incident was "
                            "opened by kim at 10:18") for f in _rules(pack)["factors"])
    # a record written after the resolution is back-filled history and says nothing about the delay
    backfilled = make_pack(statuses=(_opened_by("kim", 0, recorded_after=600), status("st_2", 23, "resolved")))
    assert not any("unnoticed" in f for f in _rules(backfilled)["factors"])


def test_opened_by_a_person_although_a_monitor_watches_the_service():
    pack = replace(make_pack(statuses=(_opened_by("kim"), status("st_2", 23, "resolved"))),
                   monitors=(MonitorCoverage("checkout-health", "checkout"), MonitorCoverage("search-up", "search")))
    draft = _draft(pack, service_owners={"checkout": "team-checkout"})
    assert ("Monitor checkout-health watches checkout but reported nothing; the incident was opened by kim at 10:00 "
            "(evidence: st_1).") in draft["what_went_poorly"]
    item = next(i for i in draft["action_items"] if i["title"].startswith("Find out why monitor"))
    assert item["title"] == ("Find out why monitor checkout-health did not fire during this incident, and fix its "
                             "check or threshold")
    assert (item["kind"], item["evidence"], item["suggested_owner"]) == ("detect", ["st_1"], "team-checkout")
    reported = replace(pack, monitor_events=(MonitorEvidence("mon_1", at(1), "checkout-health", "down"),))
    assert not any("reported nothing" in n for n in _rules(reported)["poorly"])


def test_no_alert_or_monitor_and_the_alert_on_the_metric_that_moved():
    pack = replace(make_pack(statuses=(_opened_by("kim"), status("st_2", 23, "resolved"))),
                   metrics=(metric("metric_1", -2),))
    draft = _draft(pack)
    assert "No alert or monitor reported it; kim opened it by hand (evidence: st_1)." in draft["what_went_poorly"]
    item = next(i for i in draft["action_items"] if i["kind"] == "detect")
    assert item["title"] == "Alert on error_rate of checkout: it went from 0.2% to 14% at 09:58 and no alert fired"
    assert item["evidence"] == ["metric_1", "st_1"]
    said = replace(pack, updates=(update("upd_1", 3, "Paged by the checkout SLO alert."),))
    draft = _draft(said)
    assert ("No alert or monitor event is on record, though upd_1 mentions one; kim opened the incident by hand "
            "(evidence: st_1, upd_1).") in draft["what_went_poorly"]
    assert any(i["title"].startswith("Send the alerts for checkout to the incident (an alert webhook): upd_1 "
                                     "mentions an alert") for i in draft["action_items"])
    automated = make_pack()  # opened by monitor:api-health
    assert not any("opened it by hand" in n for n in _rules(automated)["poorly"])


def test_alerts_that_fired_late():
    late = AlertEvidence("alert_1", at(9), "CheckoutErrors", "firing", service="checkout")
    pack = replace(make_pack(statuses=(status("st_1", 9, "open", actor="alert:CheckoutErrors"),
                                       status("st_2", 23, "resolved"))),
                   metrics=(metric("metric_1", 0),), alerts=(late,))
    found = _rules(pack)["factors"]
    assert ("The alert fired late: alert CheckoutErrors fired at 10:09, 9 minutes after error_rate of checkout rose "
            "at 10:00 (evidence: metric_1, alert_1).") in found
    timely = replace(pack, alerts=(replace(late, at=at(factors.LATE_ALERT_MINUTES - 1)),))
    assert not any("fired late" in f for f in _rules(timely)["factors"])
    assert any(w.startswith("Detection was automatic and quick: alert CheckoutErrors fired 4 minutes after")
               for w in _draft(timely)["what_went_well"])


def test_slow_first_update_long_gap_and_slow_mitigation_thresholds():
    first = factors.SLOW_FIRST_UPDATE_MINUTES + 1
    pack = make_pack(resolved_after=200, updates=(
        update("upd_1", first, "Investigating errors."),
        update("upd_2", first + factors.LONG_GAP_MINUTES + 1, "Still failing."),
        update("upd_3", factors.SLOW_MITIGATION_MINUTES + 12, "Fix deployed, errors recovered."),
    ))
    poorly = _rules(pack)["poorly"]
    assert f"The first update came {first} minutes after the start (evidence: upd_1)." in poorly
    assert "There was no update for 31 minutes, from 10:16 to 10:47 (evidence: upd_1, upd_2)." in poorly
    assert ("The impact lasted 72 minutes before it was mitigated, counted from the start at 10:00 (evidence: upd_3)."
            in poorly)
    on_time = make_pack(updates=(update("upd_1", 5, "Investigating."), update("upd_2", 20, "Rolled back, recovered.")))
    assert _rules(on_time)["poorly"] == []


def test_rollback_duration_from_its_first_step_to_recovery():
    pack = bad_deploy_pack(resolved_after=60, updates=(
        update("upd_1", 3, "Customers see 502 errors at checkout."),
        update("upd_2", 10, "Rolling back checkout to v2.2."),
        update("upd_3", 10 + factors.SLOW_ROLLBACK_MINUTES + 12, "Rollback complete, error rate back to normal."),
    ))
    poorly = _rules(pack)["poorly"]
    assert ("The rollback took 27 minutes, from its first step at 10:10 to recovery at 10:37 (evidence: upd_2, "
            "upd_3).") in poorly
    titles = [i["title"] for i in _draft(pack)["action_items"]]
    assert ("Make rolling back checkout faster: this time it took 27 minutes from the first step to recovery"
            in titles)
    quick = bad_deploy_pack()  # rolled back and recovering within minutes
    assert not any("rollback took" in n for n in _rules(quick)["poorly"])


def test_a_repeat_of_a_recent_incident_on_the_same_service():
    prior = PriorIncident("inc_41", "Checkout 502s after pool change", ("checkout",), T0 - timedelta(days=5),
                          T0 - timedelta(days=5) + timedelta(minutes=20), "SEV-2")
    pack = replace(make_pack(), prior_incidents=(prior,))
    draft = _draft(pack, service_owners={"checkout": "team-checkout"})
    assert ("This is a repeat on checkout: “Checkout 502s after pool change”, 5 days earlier (evidence: inc_41)."
            in draft["contributing_factors"])
    item = next(i for i in draft["action_items"] if "inc_41" in i["evidence"])
    assert item["title"] == "Check that the follow-ups of “Checkout 502s after pool change” were done: checkout " \
                            "failed again"
    assert (item["kind"], item["suggested_owner"]) == ("prevent", "team-checkout")
    old = replace(prior, started_at=T0 - factors.REPEAT_WINDOW - timedelta(hours=1))
    elsewhere = replace(prior, services=("search",))
    for other in (old, elsewhere):
        assert not any("repeat" in f for f in _rules(replace(pack, prior_incidents=(other,)))["factors"])


def test_flapping_monitors_and_alerts():
    events = []
    for n in range(FLAP_MIN_CYCLES):
        events += [MonitorEvidence(f"mon_{2 * n + 1}", at(2 + 6 * n), "checkout-health", "down"),
                   MonitorEvidence(f"mon_{2 * n + 2}", at(5 + 6 * n), "checkout-health", "up")]
    pack = replace(make_pack(), monitor_events=tuple(events))
    found = _rules(pack)["factors"]
    assert ("Monitor checkout-health flapped, failing 3 times between 10:02 and 10:14, which made the state hard to "
            "read (evidence: mon_1, mon_3, mon_5).") in found
    steady = replace(pack, monitor_events=tuple(events[:4]))
    assert not any("flapped" in f for f in _rules(steady)["factors"])


def test_a_failure_that_spread_to_another_service():
    pack = replace(make_pack(services=("checkout", "payments")),
                   metrics=(metric("metric_1", 0), metric("metric_2", 6, service="payments")))
    assert ("The failure spread from checkout (error_rate rose at 10:00) to payments (error_rate rose at 10:06) "
            "(evidence: metric_1, metric_2).") in _rules(pack)["factors"]
    together = replace(pack, metrics=(metric("metric_1", 0), metric("metric_2", 1, service="payments")))
    assert not any("spread" in f for f in _rules(together)["factors"])


def test_a_triggering_change_without_any_test_change():
    found = _rules(bad_deploy_pack())["factors"]
    assert ("The triggering change, commit abc1234 (“Lower payment client timeout to 200ms”), reached production in "
            "checkout v2.3 without any test change; it touched src/checkout/payment_client.py (evidence: deploy_4, "
            "commit_9).") in found
    tested = bad_deploy_pack(deploys=(
        deploy("deploy_4", -4, version="v2.3", commits=(commit("commit_9", "abc1234def5678", "Lower payment client "
               "timeout to 200ms", files=("src/checkout/payment_client.py", "tests/test_payment_client.py")),)),))
    assert not any("without any test change" in f for f in _rules(tested)["factors"])
    unconfirmed = bad_deploy_pack(updates=())  # a suspect nobody confirmed is not called the trigger
    assert not any("triggering change" in f for f in _rules(unconfirmed)["factors"])


def test_a_foreseeable_cause_nothing_warned_of():
    expired = log("log_1", -1, "ERROR tls: failed to verify certificate: x509: certificate has expired", count=900)
    pack = replace(make_pack(updates=(), deploys=()), logs=(expired,), metrics=(metric("metric_1", 0),))
    assert ("Nothing warned before the certificate expired: the first sign was that new errors appeared in checkout "
            "at 09:59, with no expiry alert before it (evidence: log_1).") in _rules(pack)["factors"]


def test_every_finding_cites_evidence_from_the_pack_and_one_fact_sits_in_one_section():
    prior = PriorIncident("inc_41", "Checkout 502s", ("checkout",), T0 - timedelta(days=2), None)
    pack = replace(
        make_pack(resolved_after=150, statuses=(_opened_by("kim", 0, recorded_after=12), status("st_2", 150, "resolved")),
                  updates=(update("upd_1", 20, "Restarted pods, no effect."),
                           update("upd_2", 90, "Fix deployed, error rate recovered."))),
        metrics=(metric("metric_1", -3),), prior_incidents=(prior,),
        monitors=(MonitorCoverage("checkout-health", "checkout"),))
    found = _rules(pack)
    everything = found["poorly"] + found["factors"]
    assert len(found["poorly"]) >= 4 and len(found["factors"]) >= 2
    assert all("(evidence: " in text for text in everything if "resolution time" not in text)
    assert _cited(everything) <= pack.evidence_ids()
    assert not set(found["poorly"]) & set(found["factors"])
    rules = [f.rule for f in factors.findings(pack, *_inputs(pack)) if f.rule != "failed_attempt"]
    assert len(rules) == len(set(rules)) and {"slow_detection", "silent_monitor", "repeat"} <= set(rules)


def _inputs(pack):
    from blametrail.analysis import response, severity

    return (response.analyse_response(pack), analyse_detection(pack),
            severity.assess(pack, 150, ["checkout"]))


def test_thresholds_are_named_constants():
    text = json.dumps({k: getattr(factors, k) for k in dir(factors) if k.isupper() and k.endswith("MINUTES")})
    for name in ("SLOW_FIRST_UPDATE_MINUTES", "LONG_GAP_MINUTES", "SLOW_MITIGATION_MINUTES", "SLOW_ROLLBACK_MINUTES",
                 "SLOW_DETECTION_MINUTES", "LATE_ALERT_MINUTES", "SPREAD_MINUTES"):
        assert name in text
