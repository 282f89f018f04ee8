"""The postmortem's document page in a real browser: reached from the compact card, wide and readable (timestamps
on one line), citation previews on hover and on keyboard focus, one section edited in place, publish confirmed in a
dialog and the page returning to itself; a viewer gets neither Edit nor Publish."""

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
    rt, now = live.rt, live.clock.now()
    live.engine.gate.set()  # draft at once
    with db.transaction(rt.factory) as s:
        acme = orgs.create_org(session=s, slug="document", name="Document Co", plan="pro", now=now)
        people = {role: orgs.actor_for(orgs.create_user(session=s, email=f"{role}@doc.test", org=acme, role=role,
                                                        password=PASSWORD, now=now))
                  for role in ("owner", "member", "viewer")}

    def drafted(title: str) -> int:
        with db.transaction(rt.factory) as s:
            inc = incidents.create(session=s, actor=people["owner"], now=live.clock.now(), data=IncidentCreate(
                title=title, services=["checkout"], severity="SEV-2"))
            incidents.add_update(session=s, actor=people["member"], incident=inc, now=live.clock.now(),
                                 data=UpdateCreate(body="Rolled back checkout v2.3; errors are falling."))
            postmortems.resolve_incident(session=s, incident=inc, now=live.clock.now(), resolved_at=None,
                                         by_label=people["owner"].label, by_user_id=people["owner"].user_id)
            iid = inc.id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.transaction(rt.factory) as s:
                if postmortems.find(session=s, org_id=people["owner"].org_id, incident_id=iid).sections:
                    return iid
            time.sleep(0.1)
        raise AssertionError("the draft never landed")

    return {"drafted": drafted}


def test_the_document_reads_wide_and_previews_citations(live, org, open_page):
    iid = org["drafted"]("Document page")
    page = open_page("member@doc.test")
    page.goto(f"/incidents/{iid}")
    page.click("#pm-open")
    page.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem$"))
    assert page.locator("h1#doc-title").inner_text() == "Document page"
    assert page.locator(".doc-body").bounding_box()["width"] > 850  # not squeezed into a column
    stamp = page.locator(".doc-timeline tbody tr time").first
    line = float(page.evaluate("(el) => parseFloat(getComputedStyle(el).lineHeight)", stamp.element_handle()))
    assert stamp.bounding_box()["height"] < 1.6 * line  # the timestamp stays on one line

    cite = page.locator(".doc-timeline .cite-update").first
    preview = cite.locator(".cite-preview")
    assert not preview.is_visible()
    cite.locator("a.cite-link").hover()
    assert preview.is_visible() and "Rolled back checkout" in preview.inner_text()
    page.mouse.move(0, 0)
    assert not preview.is_visible()
    cite.locator("a.cite-link").focus()  # the keyboard gets the same preview
    assert preview.is_visible()
    assert re.match(r"Update from member@doc\.test, \d\d:\d\d", cite.locator("a.cite-link").inner_text())


def test_edit_one_section_in_place_then_publish_from_the_document(live, org, open_page):
    iid = org["drafted"]("Edit in place")
    viewer = open_page("viewer@doc.test")
    viewer.goto(f"/incidents/{iid}/postmortem")
    assert viewer.locator(".doc-edit").count() == 0 and viewer.locator(".doc-toolbar .publish-form").count() == 0

    member = open_page("member@doc.test")
    member.goto(f"/incidents/{iid}/postmortem")
    member.click("section#root_cause a.doc-edit")
    member.wait_for_url("**/postmortem/edit?section=root_cause")
    member.fill("#f-root-cause", "The v2.3 payment client exhausted its connection pool.")
    member.click("form.editor button.button-primary")
    member.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem#root_cause$"))
    assert "exhausted its connection pool" in member.locator("section#root_cause").inner_text()

    owner = open_page("owner@doc.test")
    owner.goto(f"/incidents/{iid}/postmortem")
    owner.click(".doc-toolbar button:has-text('Publish')")
    assert owner.locator("#confirm-dialog").is_visible()
    owner.locator("#confirm-dialog button", has_text="Publish").click()
    owner.wait_for_url(re.compile(rf"/incidents/{iid}/postmortem$"))
    assert "published (version 1)" in owner.locator(".flash-success").inner_text()
    assert owner.locator("#doc-status").inner_text().strip() == "Published"
