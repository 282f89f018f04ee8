"""The postmortem editor in a real browser: two people editing different sections at once keep both; the same
section shows the conflict panel listing only it; editor.js moves and adds table rows; a viewer gets no Edit."""

from __future__ import annotations

import re
import time

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs import service as orgs
from blametrail.postmortems import service as postmortems
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org(live):
    """An organization with a member, an admin and a viewer; returns a function making a drafted incident."""
    rt, now = live.rt, live.clock.now()
    live.engine.gate.set()  # draft at once
    with db.transaction(rt.factory) as s:
        acme = orgs.create_org(session=s, slug="editing", name="Editing Co", plan="pro", now=now)
        people = {role: orgs.actor_for(orgs.create_user(session=s, email=f"{role}@edit.test", org=acme, role=role,
                                                        password=PASSWORD, now=now))
                  for role in ("owner", "admin", "member", "viewer")}

    def drafted(title: str) -> int:
        with db.transaction(rt.factory) as s:
            inc = incidents.create(session=s, actor=people["owner"], now=live.clock.now(), data=IncidentCreate(
                title=title, services=["checkout"], severity="SEV-2"))
            incidents.add_update(session=s, actor=people["owner"], incident=inc, now=live.clock.now(),
                                 data=UpdateCreate(body="Rolled back checkout v2.3"))
            postmortems.resolve_incident(session=s, incident=inc, now=live.clock.now(), resolved_at=None,
                                         by_label=people["owner"].label, by_user_id=people["owner"].user_id)
            iid = inc.id
        deadline = time.monotonic() + 30  # the embedded worker drafts in the background
        while time.monotonic() < deadline:
            if sections(iid) is not None:
                return iid
            time.sleep(0.1)
        raise AssertionError("the draft never landed")

    def sections(iid: int) -> dict | None:
        with db.transaction(rt.factory) as s:
            return postmortems.find(session=s, org_id=people["owner"].org_id, incident_id=iid).sections

    return {"drafted": drafted, "sections": sections}


def test_two_browsers_editing_different_sections_keep_both(live, org, open_page):
    iid = org["drafted"]("Different sections")
    alice, bob = open_page("member@edit.test"), open_page("admin@edit.test")
    alice.goto(f"/incidents/{iid}/postmortem/edit?section=summary")
    bob.goto(f"/incidents/{iid}/postmortem/edit?section=root_cause")
    assert alice.locator("#f-root-cause").count() == 0 and bob.locator("#f-summary").count() == 0
    alice.fill("#f-summary", "Alice: checkout failed for 15 minutes.")
    bob.fill("#f-root-cause", "Bob: the pool was sized for v2.2.")
    alice.click("form.editor button.button-primary")
    alice.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem#summary$"))
    bob.click("form.editor button.button-primary")
    bob.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem#root_cause$"))
    now = org["sections"](iid)
    assert (now["summary"], now["root_cause"]) == ("Alice: checkout failed for 15 minutes.",
                                                   "Bob: the pool was sized for v2.2.")


def test_the_same_section_shows_only_it_in_the_conflict_panel(live, org, open_page):
    iid = org["drafted"]("Same section")
    alice, bob = open_page("member@edit.test"), open_page("admin@edit.test")
    alice.goto(f"/incidents/{iid}/postmortem/edit")
    bob.goto(f"/incidents/{iid}/postmortem/edit")
    bob.fill("#f-summary", "Bob's summary.")
    bob.click("form.editor button.button-primary")
    bob.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem$"))
    alice.fill("#f-summary", "Alice's summary.")
    alice.fill("#f-root-cause", "Alice's root cause.")
    alice.click("form.editor button.button-primary")
    panel = alice.locator(".conflict-section")
    panel.first.wait_for()
    assert panel.count() == 1 and panel.get_attribute("data-section") == "summary"
    assert panel.locator(".theirs pre").inner_text() == "Bob's summary."
    assert panel.locator(".mine pre").inner_text() == "Alice's summary."
    assert "Root cause" in alice.locator(".saved-sections").inner_text()
    assert org["sections"](iid)["root_cause"] == "Alice's root cause."  # saved without asking
    alice.check("input[name=choice_summary][value=mine]")
    alice.click("form.conflict-form button.button-primary")
    alice.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem$"))
    assert org["sections"](iid)["summary"] == "Alice's summary."


def test_table_rows_move_and_add_in_the_page(live, org, open_page):
    iid = org["drafted"]("Rows")
    page = open_page("member@edit.test")
    page.goto(f"/incidents/{iid}/postmortem/edit?section=action_items")
    titles = page.locator("input[name=action_title]")
    count = titles.count()
    titles.nth(0).fill("First")
    titles.nth(1).fill("Second")
    page.evaluate("window.__sameDocument = true")
    page.click("button[name=op][value='action_items:down:0']")
    assert page.evaluate("window.__sameDocument")  # moved in place by editor.js, not by a round trip
    assert [titles.nth(i).input_value() for i in range(2)] == ["Second", "First"]
    page.click("button[data-add-row=action_items]")
    assert titles.count() == count + 1 and titles.nth(count).input_value() == ""
    titles.nth(count).fill("Third")
    page.click("form.editor button.button-primary")
    page.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem#action_items$"))
    stored = [a["title"] for a in org["sections"](iid)["action_items"]]
    assert stored[:2] == ["Second", "First"] and stored[-1] == "Third"


def test_a_viewer_gets_no_edit(live, org, open_page):
    iid = org["drafted"]("Viewer")
    page = open_page("viewer@edit.test")
    page.goto(f"/incidents/{iid}")
    page.locator("#postmortem-card").wait_for()
    assert page.locator("#postmortem-card a", has_text=re.compile(r"^\s*Edit\s*$")).count() == 0
    assert page.goto(f"/incidents/{iid}/postmortem/edit").status == 403


def test_markdown_preview_swaps_in_without_leaving_the_page(live, org, open_page):
    iid = org["drafted"]("Preview")
    page = open_page("member@edit.test")
    page.goto(f"/incidents/{iid}/postmortem/edit?section=summary")
    page.fill("#f-summary", "The **pool** ran dry <script>window.__ran = 1</script>")
    page.evaluate("window.__sameDocument = true")
    page.click("[data-md-field=summary] button[name=op][value='preview:summary']")
    page.locator("#preview-f-summary .md-preview strong").wait_for()
    assert page.locator("#preview-f-summary .md-preview strong").inner_text() == "pool"
    assert page.evaluate("window.__sameDocument") and page.evaluate("window.__ran") is None
    assert page.url.endswith("/edit?section=summary")  # htmx swapped it in; nothing was saved
    assert org["sections"](iid)["summary"] != "The **pool** ran dry"
