"""Severity against written definitions: breadth, duration and customer impact; recorded severities are kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

from blametrail.analysis import severity
from blametrail.analysis.evidence import MonitorEvidence
from blametrail.analysis.severity import DEFAULT_DEFINITIONS, assess, definitions_from, definitions_to_data
from blametrail.analysis.writer import write_postmortem

from .factories import at, make_pack, update
from .observability import metric

FIVE = ("api", "auth", "checkout", "payments", "search")


def test_a_346_minute_global_outage_across_five_services_is_sev1_never_sev3():
    pack = make_pack(severity=None, services=FIVE, resolved_after=346, title="Global outage of the API platform",
                     updates=(update("upd_1", 10, "All regions are failing; customers cannot log in."),))
    draft = write_postmortem(pack)
    assert draft["severity"] == "SEV-1"
    assert "Severity SEV-1 was inferred from the written definitions: a total or global outage for 346 minutes on " \
           "5 services" in draft["confidence"]["reason"]
    # even with no impact words at all, 346 minutes on five services is not a minor incident
    quiet = write_postmortem(make_pack(severity=None, services=FIVE, resolved_after=346, title="Incident 4711"))
    assert quiet["severity"] == "SEV-2"


@pytest.mark.parametrize(("title", "minutes", "services", "expected"), [
    ("Checkout down", 20, ("checkout",), "SEV-2"),  # an outage
    ("Checkout down", 60, ("checkout",), "SEV-1"),  # an outage lasting an hour
    ("Checkout down", 10, ("checkout", "payments", "cart"), "SEV-1"),  # an outage on three services
    ("Partial outage of checkout", 300, ("checkout",), "SEV-2"),  # partial: SEV-2 unless long and broad
    ("Partial outage of checkout", 240, ("checkout", "payments", "cart"), "SEV-1"),
    ("Search latency degraded", 20, ("search",), "SEV-3"),
    ("Search latency degraded", 120, ("search",), "SEV-2"),
    ("Customers see 502s at checkout", 15, ("checkout",), "SEV-2"),  # requests failing: a partial outage
    ("Flaky admin export", 5, ("admin",), "SEV-4"),  # unknown impact, brief
    ("Flaky admin export", 30, ("admin",), "SEV-3"),
    ("Nightly report late, no customer impact", 60, ("reports",), "SEV-4"),
    ("Login failing for all customers", 5, ("auth",), "SEV-1"),
    ("We scaled down the cluster; no outage", 10, ("batch",), "SEV-4"),  # negations are not impact
])
def test_the_default_definitions(title, minutes, services, expected):
    pack = make_pack(severity=None, title=title, services=services, resolved_after=minutes)
    assert assess(pack, minutes, services).inferred == expected


def test_measurements_count_as_impact():
    down = MonitorEvidence(id="mon_1", at=at(1), monitor="checkout-health", state="down", failed_checks=9,
                           total_checks=10)
    pack = replace(make_pack(severity=None, title="Incident 12"), monitor_events=(down,))
    rated = assess(pack, 23, ["checkout"])
    assert (rated.impact, rated.inferred) == ("outage", "SEV-2")
    assert "monitor checkout-health: 9 of 10 checks failed (evidence: mon_1)" in rated.clues
    errors = replace(make_pack(severity=None, title="Incident 12"), metrics=(metric("metric_1", 0, after=0.12),))
    assert assess(errors, 23, ["checkout"]).impact == "partial"  # 12% of requests failing
    light = replace(make_pack(severity=None, title="Incident 12"), metrics=(metric("metric_1", 0, after=0.01),))
    assert assess(light, 23, ["checkout"]).impact == "degraded"


def test_a_recorded_severity_is_never_overwritten():
    for recorded in ("SEV-1", "SEV-2", "SEV-3", "SEV-4"):
        pack = make_pack(severity=recorded, title="Checkout down", resolved_after=300, services=FIVE)
        assert write_postmortem(pack)["severity"] == recorded
    assert write_postmortem(make_pack(severity="critical"))["severity"] == "SEV-1"  # words are normalised


def test_a_recorded_severity_below_its_definition_is_a_finding_of_what_went_poorly():
    pack = make_pack(severity="SEV-3", title="Checkout down", resolved_after=95)
    draft = write_postmortem(pack)
    assert draft["severity"] == "SEV-3"
    assert ("It was recorded as SEV-3, but by the written definitions it is SEV-1: a customer-facing outage for 95 "
            "minutes on 1 service (“down” in the title). The recorded severity was kept.") in draft["what_went_poorly"]
    assert "severity" not in draft["confidence"]["reason"].lower()


def test_a_recorded_severity_above_its_definition_is_noted_in_the_confidence_reason():
    pack = make_pack(severity="SEV-1", title="Search slightly degraded", resolved_after=10)
    draft = write_postmortem(pack)
    assert draft["severity"] == "SEV-1"
    assert ("The recorded severity SEV-1 was kept, though by the written definitions the evidence supports SEV-3"
            in draft["confidence"]["reason"])
    assert not any("recorded as" in note for note in draft["what_went_poorly"])


def test_definitions_are_data_an_organization_can_override():
    data = definitions_to_data()
    assert definitions_from(data) == DEFAULT_DEFINITIONS
    strict = [
        {"severity": "SEV-1", "meaning": "Any customer-facing outage.", "rules": [{"impacts": ["outage", "total"]}]},
        {"severity": "SEV-2", "meaning": "Any failing requests.", "rules": [{"impacts": ["partial", "degraded"]}]},
        {"severity": "SEV-4", "meaning": "Everything else.", "rules": [{}]},
    ]
    definitions = definitions_from(strict)
    pack = make_pack(severity=None, title="Checkout down", resolved_after=3)
    assert assess(pack, 3, ["checkout"], definitions).inferred == "SEV-1"
    draft = write_postmortem(pack, severity_definitions=definitions)
    assert draft["severity"] == "SEV-1"
    unknown = make_pack(severity=None, title="Incident 12", resolved_after=500)
    assert assess(unknown, 500, ["checkout"], definitions).inferred == "SEV-4"


@pytest.mark.parametrize(("data", "message"), [
    ([], "non-empty list"),
    ({"severity": "SEV-1"}, "non-empty list"),
    (["x"], "must be an object"),
    ([{"severity": "SEV-9", "rules": [{}]}], "severity must be one of"),
    ([{"severity": "SEV-1", "rules": []}], "needs at least one rule"),
    ([{"severity": "SEV-1", "rules": [{"impacts": ["catastrophic"]}]}], "impacts must be a list"),
    ([{"severity": "SEV-1", "rules": [{"min_minutes": -5}]}], "min_minutes must be a whole number"),
    ([{"severity": "SEV-1", "rules": [{"min_services": True}]}], "min_services must be a whole number"),
    ([{"severity": "SEV-2", "rules": [{}]}, {"severity": "SEV-1", "rules": [{}]}], "most severe first"),
    ([{"severity": "SEV-2", "rules": [{}]}, {"severity": "SEV-2", "rules": [{}]}], "each severity once"),
])
def test_bad_definitions_are_refused_with_a_reason(data, message):
    with pytest.raises(ValueError, match=message):
        definitions_from(data)


def test_definitions_that_leave_a_gap_fall_back_to_the_least_severe_level():
    only_outages = definitions_from([{"severity": "SEV-1", "rules": [{"impacts": ["outage"]}]},
                                     {"severity": "SEV-3", "rules": [{"impacts": ["degraded"]}]}])
    pack = make_pack(severity=None, title="Incident 12")
    assert assess(pack, 10, ["checkout"], only_outages).inferred == "SEV-3"


def test_every_default_level_has_a_written_meaning():
    assert [d.severity for d in DEFAULT_DEFINITIONS] == list(severity.SEVERITIES)
    assert all(d.meaning.endswith(".") and len(d.meaning) > 40 for d in DEFAULT_DEFINITIONS)
