"""Grounding: unknown ids dropped with lower confidence, out-of-window times rejected, facts from data, honest root cause."""

from __future__ import annotations

from dataclasses import replace

import pytest

from blametrail.engines.grounding import (
    NOT_ESTABLISHED,
    UNCITED_ROOT_CAUSE,
    UNVERIFIED,
    ground,
)
from blametrail.engines.sections import Sections
from blametrail.errors import UpstreamError
from tests.ai import make_pack


def good(**overrides) -> dict:
    raw = {
        "summary": "Checkout failed after the v2.3 deploy.",
        "severity": "SEV-2",
        "customer_impact": {"description": "Checkout errors", "duration_minutes": 25, "affected_services": ["checkout"]},
        "timeline": [
            {"at": "2026-11-26T09:55:00Z", "source": "deploy", "description": "v2.3 deployed", "evidence": ["deploy_1"]},
            {"at": "2026-11-26T10:01:00Z", "source": "alert", "description": "Alert fired", "evidence": ["alert_1"]},
        ],
        "root_cause": "The pool change in v2.3 exhausted connections (evidence: deploy_1, commit_1).",
        "contributing_factors": ["No canary"], "what_went_well": ["Fast rollback (evidence: upd_2)"],
        "what_went_poorly": [], "action_items": [{"title": "Add a pool test", "priority": "high"}],
        "confidence": {"level": "high", "reason": "Update confirms it."},
    }
    raw.update(overrides)
    return raw


def test_valid_output_passes_unchanged_in_substance():
    g = ground(good(), make_pack())
    Sections.model_validate(g.sections)
    assert g.dropped_citations == () and g.rejected_entries == 0
    assert g.sections["confidence"]["level"] == "high"
    assert len(g.sections["timeline"]) == 2
    assert g.sections["root_cause"].startswith("The pool change")


def test_unknown_ids_are_dropped_and_confidence_lowered():
    raw = good(timeline=[
        {"at": "2026-11-26T10:01:00Z", "source": "alert", "description": "Alert fired", "evidence": ["alert_1", "alert_99"]},
        {"at": "2026-11-26T10:02:00Z", "source": "update", "description": "Only fake", "evidence": ["upd_999"]},
    ], summary="As upd_555 says, it broke.")
    g = ground(raw, make_pack())
    assert set(g.dropped_citations) == {"alert_99", "upd_999", "upd_555"}
    assert [e["evidence"] for e in g.sections["timeline"]] == [["alert_1"]]
    assert g.rejected_entries == 1  # the entry citing only a fake id
    assert g.sections["confidence"]["level"] == "medium"
    assert "Confidence lowered" in g.sections["confidence"]["reason"]
    assert "3 citation(s)" in g.sections["confidence"]["reason"] and "alert_99" not in g.sections["confidence"]["reason"]
    assert "upd_555" not in g.sections["summary"] and UNVERIFIED in g.sections["summary"]


def test_out_of_window_and_naive_times_are_rejected():
    raw = good(timeline=[
        {"at": "2026-11-26T08:00:00Z", "source": "deploy", "description": "too early", "evidence": ["deploy_1"]},
        {"at": "2026-11-26T11:30:00Z", "source": "update", "description": "too late", "evidence": ["upd_2"]},
        {"at": "2026-11-26T10:02:00", "source": "update", "description": "no zone", "evidence": ["upd_1"]},
        {"at": "yesterday", "source": "update", "description": "not a time", "evidence": ["upd_1"]},
        {"at": "2026-11-26T10:02:00+00:00", "source": "update", "description": "kept", "evidence": ["upd_1"]},
    ])
    g = ground(raw, make_pack())
    assert [e["description"] for e in g.sections["timeline"]] == ["kept"]
    assert g.sections["timeline"][0]["at"] == "2026-11-26T10:02:00Z"
    assert g.rejected_entries == 4
    assert g.sections["confidence"]["level"] == "medium"


def test_computed_facts_override_the_model():
    raw = good(severity="SEV-4", customer_impact={"description": "x", "duration_minutes": 999,
                                                    "affected_services": ["billing", "everything"]})
    g = ground(raw, make_pack(severity="SEV-1"))
    assert g.sections["severity"] == "SEV-1"
    assert g.sections["customer_impact"]["duration_minutes"] == 25
    assert g.sections["customer_impact"]["affected_services"] == ["checkout"]
    open_pack = make_pack(severity=None, resolved=False)
    g2 = ground(raw, open_pack)
    assert g2.sections["customer_impact"]["duration_minutes"] is None
    # no recorded severity: the written definitions decide (a monitor saw checkout down), not the model's choice
    assert g2.sections["severity"] == "SEV-2"
    assert "The model proposed SEV-4; the written definitions decide" in g2.sections["confidence"]["reason"]
    assert "Severity SEV-2 was inferred from the written definitions" in g2.sections["confidence"]["reason"]


def test_uncited_root_cause_is_replaced_by_not_established():
    g = ground(good(root_cause="Bob pushed a bad config."), make_pack())
    assert g.sections["root_cause"] == UNCITED_ROOT_CAUSE
    assert g.sections["root_cause"].startswith(NOT_ESTABLISHED)
    assert "Bob" not in g.sections["root_cause"]
    assert g.sections["confidence"]["level"] == "low"
    assert any("Bob pushed a bad config." in n for n in g.notes)  # kept for the audit, not in the draft


def test_root_cause_citing_only_fake_ids_is_uncited():
    g = ground(good(root_cause="The database failed (evidence: upd_999)."), make_pack())
    assert g.sections["root_cause"] == UNCITED_ROOT_CAUSE
    assert "upd_999" in g.dropped_citations


def test_not_established_root_cause_needs_no_citation():
    g = ground(good(root_cause=f"{NOT_ESTABLISHED} Missing: logs."), make_pack())
    assert g.sections["root_cause"] == f"{NOT_ESTABLISHED} Missing: logs."


def test_wrong_types_and_extra_keys_are_coerced_or_dropped():
    raw = good(timeline="not a list", action_items=[{"title": "ok"}, {"title": 5, "priority": "urgent"}, "junk"],
               what_went_well=["fine", {"nested": True}], confidence="very", extra_field={"x": 1})
    g = ground(raw, make_pack())
    Sections.model_validate(g.sections)
    assert "extra_field" not in g.sections
    assert g.sections["timeline"] == []
    assert g.sections["action_items"] == [{"title": "ok", "priority": "medium", "suggested_owner": None}]
    assert g.sections["what_went_well"] == ["fine"]
    assert g.sections["confidence"]["level"] == "low"
    assert any("extra_field" in n for n in g.notes)


def test_not_a_dict_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        ground(["a", "list"], make_pack())  # type: ignore[arg-type]


# --- one rule for both engines: events after the resolution --------------------------------------------------

def _later_pack():
    from blametrail.analysis.evidence import UpdateEvidence
    from tests.ai import at

    base = make_pack()  # resolved at +25
    later = UpdateEvidence(id="upd_3", at=at(90), author="bob", body="Follow-up: the pool fix is merged.")
    return replace(base, updates=(*base.updates, later))


def test_model_entries_after_the_resolution_are_kept_marked_when_they_cite_later_evidence():
    entries = [
        {"at": "2026-11-26T10:01:00Z", "source": "alert", "description": "Alert fired", "evidence": ["alert_1"]},
        {"at": "2026-11-26T11:30:00Z", "source": "update", "description": "Pool fix merged", "evidence": ["upd_3"]},
        {"at": "2026-11-26T11:40:00Z", "source": "update", "description": "Made up later", "evidence": ["upd_3"]},
        {"at": "2026-11-26T10:40:00Z", "source": "update", "description": "Misdated", "evidence": ["upd_1"]},
        {"at": "2026-11-26T10:05:00Z", "source": "update", "description": "Marked wrongly", "evidence": ["upd_1"],
         "after_resolution": True},
        {"at": "2026-11-26T10:06:00Z", "source": "update", "description": "Dated early", "evidence": ["upd_3"]},
    ]
    g = ground(good(timeline=entries), _later_pack())
    rows = g.sections["timeline"]
    assert [(r["description"], r.get("after_resolution", False)) for r in rows] == [
        ("Alert fired", False), ("Marked wrongly", False), ("After resolution: Pool fix merged", True)]
    # later than any later evidence; after the resolution citing earlier evidence; before it citing only later evidence
    assert g.rejected_entries == 3


def test_later_evidence_the_model_left_out_is_added_exactly_as_the_built_in_engine_writes_it():
    from blametrail.analysis.writer import write_postmortem

    pack = _later_pack()
    g = ground(good(), pack)
    later = [r for r in g.sections["timeline"] if r.get("after_resolution")]
    builtin = [r for r in write_postmortem(pack)["timeline"] if r.get("after_resolution")]
    assert later == builtin == [{"at": "2026-11-26T11:30:00Z", "source": "update", "after_resolution": True,
                                 "description": "After resolution: Update from bob: Follow-up: the pool fix is merged.",
                                 "evidence": ["upd_3"]}]
    assert g.rejected_entries == 0


# --- owners, action items, severity ---------------------------------------------------------------------------

def test_a_person_from_the_evidence_is_never_kept_as_suggested_owner():
    items = [{"title": "Fix the pool", "priority": "high", "suggested_owner": "dev@example.com", "kind": "prevent",
              "evidence": ["commit_1", "commit_999"]},
             {"title": "Add an alert", "suggested_owner": "Alice", "kind": "notice", "evidence": "alert_1"},
             {"title": "Tune the pool", "suggested_owner": "platform-team"}]
    g = ground(good(action_items=items), make_pack(), service_owners={"checkout": "team-checkout"})
    fix, alert, tune = g.sections["action_items"]
    assert fix == {"title": "Fix the pool", "priority": "high", "suggested_owner": "team-checkout", "kind": "prevent",
                   "evidence": ["commit_1"]}
    assert alert["suggested_owner"] == "team-checkout" and "kind" not in alert and alert["evidence"] == ["alert_1"]
    assert tune["suggested_owner"] == "platform-team"  # a team the model named stays
    assert "commit_999" in g.dropped_citations
    assert any("2 suggested owner(s) named a person" in n for n in g.notes)
    no_map = ground(good(action_items=items[:1]), make_pack())
    assert no_map.sections["action_items"][0]["suggested_owner"] is None


def test_a_recorded_severity_below_its_definition_is_flagged_as_for_the_built_in_engine():
    from blametrail.analysis.writer import write_postmortem

    pack = make_pack(severity="SEV-4", title="Checkout down for all customers")
    g = ground(good(), pack)
    assert g.sections["severity"] == "SEV-4"
    flagged = [n for n in g.sections["what_went_poorly"] if n.startswith("It was recorded as SEV-4")]
    assert flagged and flagged[0] in write_postmortem(pack)["what_went_poorly"]
