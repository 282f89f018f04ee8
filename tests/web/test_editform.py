"""The postmortem editor keeps what its form does not show: an action item's kind and evidence, a timeline entry's
after-resolution mark (through the real page, and the form's rules one by one)."""

from __future__ import annotations

import copy

from sqlalchemy import update

from blametrail import db
from blametrail.engines.sections import Sections, dump
from blametrail.postmortems.models import Postmortem
from blametrail.web.pages import editform
from tests.web.test_pages import (  # noqa: F401 (fixtures)
    browser,
    drafted_incident,
    edit_form,
    pm_row,
    team,
)

STORED = dump(Sections.model_validate({
    "summary": "Checkout failed for 15 minutes after checkout v2.3.",
    "severity": "SEV-2",
    "customer_impact": {"description": "Card payments failed.", "duration_minutes": 15,
                        "affected_services": ["checkout"]},
    "timeline": [
        {"at": "2026-11-26T10:00:00Z", "source": "deploy", "description": "checkout v2.3 deployed",
         "evidence": ["deploy_1"]},
        {"at": "2026-11-26T10:05:00Z", "source": "update", "description": "Rolled back checkout v2.3",
         "evidence": ["upd_1"]},
        {"at": "2026-11-26T11:30:00Z", "source": "deploy", "after_resolution": True,
         "description": "After resolution: the pool fix shipped in checkout v2.4", "evidence": ["deploy_2"]},
        {"at": "2026-11-26T12:00:00Z", "source": "update", "after_resolution": True,
         "description": "After resolution: follow-up posted with the pool numbers", "evidence": ["upd_2"]},
    ],
    "root_cause": "Checkout v2.3 opened a connection per request and exhausted the pool.",
    "action_items": [
        {"title": "Alert on checkout 5xx above 2%", "priority": "high", "suggested_owner": "payments-team",
         "kind": "detect", "evidence": ["metric_1"]},
        {"title": "Make the checkout rollback one command", "priority": "medium", "kind": "mitigate",
         "evidence": ["upd_1"]},
        {"title": "Size the pool for checkout's connection use", "priority": "medium", "kind": "prevent",
         "evidence": ["deploy_1", "commit_1"]},
    ],
    "confidence": {"level": "medium", "reason": "An update states the cause."},
}))


def values() -> dict:
    """The form values the editor renders for STORED (blank rows included)."""
    return editform.values_from_sections(copy.deepcopy(STORED))


def store(rt, org_id: int, incident_id: int, sections: dict) -> None:
    """Put sections on the postmortem the way a drafting run stores them (not as an edit)."""
    with db.transaction(rt.factory) as s:
        s.execute(update(Postmortem).where(Postmortem.org_id == org_id, Postmortem.incident_id == incident_id)
                  .values(sections=sections, original_sections=sections, edited_keys=[]))


# --- through the page ---------------------------------------------------------------------------------------------

def test_an_unrelated_edit_keeps_kind_evidence_and_the_after_resolution_mark(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    org_id = t["owner"].actor.org_id
    store(rt, org_id, incident_id, STORED)
    c = browser(t["member"])
    _, data = edit_form(c, incident_id)
    data["summary"] = ["Checkout v2.3 exhausted the database pool; rolled back after 15 minutes."]
    clock.advance(minutes=2)
    r = c.post(f"/incidents/{incident_id}/postmortem/edit", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    pm = pm_row(rt, org_id, incident_id)
    assert pm.sections["action_items"] == STORED["action_items"]  # kind and evidence still there
    assert pm.sections["timeline"] == STORED["timeline"]  # the after-resolution rows still marked
    assert pm.edited_keys == ["summary"]  # the only section the person touched


def test_edited_rows_keep_what_still_applies(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    org_id = t["owner"].actor.org_id
    store(rt, org_id, incident_id, STORED)
    c = browser(t["member"])
    _, data = edit_form(c, incident_id)
    data["action_title"][0] = "Page on checkout 5xx above 2% for 3 minutes"  # reworded
    data["action_priority"][1], data["action_owner"][1] = "low", "sre"  # re-prioritised, same title
    data["action_title"][2] = ""  # removed
    data["action_title"][3], data["action_priority"][3] = "Load-test checkout before release", "high"  # new
    data["timeline_description"][2] = "After resolution: the pool fix shipped in checkout v2.4 (pool 20 → 50)"
    data["timeline_description"][3] = "Follow-up posted with the pool numbers"  # the mark removed
    clock.advance(minutes=2)
    r = c.post(f"/incidents/{incident_id}/postmortem/edit", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    pm = pm_row(rt, org_id, incident_id)
    assert pm.sections["action_items"] == [
        {"title": "Page on checkout 5xx above 2% for 3 minutes", "priority": "high",
         "suggested_owner": "payments-team", "kind": "detect"},
        {"title": "Make the checkout rollback one command", "priority": "low", "suggested_owner": "sre",
         "kind": "mitigate", "evidence": ["upd_1"]},
        {"title": "Load-test checkout before release", "priority": "high", "suggested_owner": None},
    ]
    timeline = pm.sections["timeline"]
    assert timeline[:2] == STORED["timeline"][:2]
    assert timeline[2] == {**STORED["timeline"][2], "description": data["timeline_description"][2]}
    assert timeline[3] == {"at": "2026-11-26T12:00:00Z", "source": "update", "evidence": ["upd_2"],
                           "description": "Follow-up posted with the pool numbers"}  # no longer marked


# --- the form's rules ---------------------------------------------------------------------------------------------

def test_an_untouched_form_gives_back_exactly_what_is_stored():
    sections, errors = editform.parse(values(), current=STORED)
    assert errors == []
    assert sections == STORED
    assert editform.changed_sections(sections, STORED) == {}


def test_a_new_row_in_a_blank_slot_gets_no_kind_evidence_or_mark():
    v = values()
    blank_action = len(STORED["action_items"])
    v["action_items"][blank_action].update(title="Document the pool limit", priority="low")
    blank_row = len(STORED["timeline"])
    v["timeline"][blank_row].update(at="2026-11-26T12:30:00Z", source="update",
                                    description="After resolution: retro scheduled")  # the mark typed by hand
    sections, errors = editform.parse(v, current=STORED)
    assert errors == []
    assert sections["action_items"][-1] == {"title": "Document the pool limit", "priority": "low",
                                            "suggested_owner": None}
    assert "after_resolution" not in sections["timeline"][-1]
    assert editform.changed_sections(sections, STORED).keys() == {"action_items", "timeline"}


def test_a_removed_row_does_not_shift_fields_onto_the_next():
    v = values()
    v["action_items"][0]["title"] = ""  # removing row 1 leaves rows 2 and 3 with their own kind and evidence
    v["timeline"][2]["description"] = ""
    sections, _ = editform.parse(v, current=STORED)
    assert sections["action_items"] == STORED["action_items"][1:]
    assert sections["timeline"] == STORED["timeline"][:2] + STORED["timeline"][3:]


def test_an_unchanged_marked_row_keeps_its_mark_without_the_prefix():
    stored = copy.deepcopy(STORED)
    stored["timeline"][3]["description"] = "Follow-up posted"  # an API client's row: flagged, no prefix
    v = editform.values_from_sections(stored)
    sections, _ = editform.parse(v, current=stored)  # not changed: kept
    assert sections["timeline"][3]["after_resolution"] is True
    v["timeline"][3]["at"] = "2026-11-26T12:05:00Z"  # edited, and nothing marks it any more
    sections, _ = editform.parse(v, current=stored)
    assert "after_resolution" not in sections["timeline"][3]


def test_the_mark_is_kept_whatever_the_prefix_case_on_an_edited_row():
    v = values()
    v["timeline"][2]["description"] = "after resolution: the fix shipped"
    v["timeline"][2]["at"] = "2026-11-26T11:35:00Z"
    sections, _ = editform.parse(v, current=STORED)
    assert sections["timeline"][2]["after_resolution"] is True


def test_without_stored_sections_nothing_is_carried_over():
    sections, errors = editform.parse(values())
    assert errors == []
    assert all(set(a) == {"title", "priority", "suggested_owner"} for a in sections["action_items"])
    assert not any("after_resolution" in t for t in sections["timeline"])
    broken = {**STORED, "action_items": [{"title": "x", "kind": "someday"}]}  # not something the editor renders
    sections, errors = editform.parse(values(), current=broken)
    assert errors == [] and "kind" not in sections["action_items"][0]


def test_a_validation_error_still_names_the_row_the_person_sees():
    v = values()
    v["timeline"][1]["at"] = "yesterday"
    sections, errors = editform.parse(v, current=STORED)
    assert sections is None
    assert errors == ["Timeline row 2 time: use a UTC time like 2026-11-26T10:05:00Z."]
