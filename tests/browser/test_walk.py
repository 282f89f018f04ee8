"""The whole way after a draft, in a real browser, as the four roles: a member asks for review and comments; the
admin replies, resolves and approves; the owner publishes (confirmed in the dialog); the member edits after
publishing; the admin republishes; the history compares the two published texts; the action items are tracked; the
PDF downloads; the viewer reads all of it and changes nothing."""

from __future__ import annotations

import re
import time

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs import service as orgs
from blametrail.postmortems import reviews
from blametrail.postmortems import service as postmortems
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def walk(live):
    rt, now = live.rt, live.clock.now()
    live.engine.gate.set()
    with db.transaction(rt.factory) as s:
        org = orgs.create_org(session=s, slug="walk", name="Walk Co", plan="pro", now=now)
        people = {role: orgs.actor_for(orgs.create_user(session=s, email=f"{role}@walk.test", org=org, role=role,
                                                        password=PASSWORD, now=now))
                  for role in ("owner", "admin", "member", "viewer")}
        reviews.set_mode(session=s, org_id=org.id, mode="optional")
        inc = incidents.create(session=s, actor=people["owner"], now=now, data=IncidentCreate(
            title="Checkout errors", services=["checkout"], severity="SEV-2"))
        incidents.add_update(session=s, actor=people["member"], incident=inc, now=now,
                             data=UpdateCreate(body="Rolled back checkout v2.3; errors falling."))
        postmortems.resolve_incident(session=s, incident=inc, now=now, resolved_at=None,
                                     by_label=people["owner"].label, by_user_id=people["owner"].user_id)
        iid = inc.id
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.transaction(rt.factory) as s:
            if postmortems.find(session=s, org_id=people["owner"].org_id, incident_id=iid).sections:
                return {"iid": iid, "people": people}
        time.sleep(0.1)
    raise AssertionError("the draft never landed")


def test_review_publish_edit_republish_compare_items_pdf(live, walk, open_page):
    iid, people = walk["iid"], walk["people"]
    doc = f"/incidents/{iid}/postmortem"

    member = open_page("member@walk.test")
    member.goto(doc)
    member.check(f"#rv-{people['admin'].user_id}")
    member.click("form.review-request button")
    assert "Review requested from admin@walk.test" in member.locator(".flash-success").inner_text()
    member.click("section#root_cause .comment-new summary")
    member.fill("#c-root_cause", "Is the pool size really the cause?")
    member.click("section#root_cause .comment-form button")
    assert member.locator("section#root_cause .comment-thread").count() == 1

    admin = open_page("admin@walk.test")
    admin.goto(doc)
    thread = admin.locator("section#root_cause .comment-thread").first
    thread.locator("input[name=body]").fill("Yes: 100 of 100 connections in use.")
    thread.locator(".comment-reply-form button").click()
    admin.locator("section#root_cause .comment-thread").first.locator(".comment-resolve-form button").click()
    assert "Resolved by" in admin.locator("section#root_cause .comment-thread.is-resolved").inner_text()
    admin.click("form.review-decision button[value=approve]")
    assert admin.locator("#review-state").inner_text().startswith("Approved by admin@walk.test")

    owner = open_page("owner@walk.test")
    owner.goto(doc)
    owner.click(".doc-toolbar button:has-text('Publish')")
    owner.locator("#confirm-dialog button", has_text="Publish").click()
    owner.wait_for_url(re.compile(rf"{doc}$"))
    assert "Approved by admin@walk.test" in owner.locator(".flash-success").inner_text()

    member.goto(doc)
    member.click("section#summary a.doc-edit")
    member.fill("#f-summary", "Checkout failed for 15 minutes after the v2.3 deploy; the pool was exhausted.")
    member.click("form.editor button.button-primary")
    member.wait_for_url(re.compile(r"#summary$"))
    assert "Edited after publishing" in member.locator("#doc-version-note").inner_text()
    assert member.locator(".doc-toolbar .publish-form").count() == 0  # members do not republish

    admin.goto(doc)
    admin.click(".doc-toolbar button:has-text('Republish')")
    admin.locator("#confirm-dialog button", has_text="Republish").click()
    admin.wait_for_url(re.compile(rf"{doc}$"))
    assert "published (version 2)" in admin.locator(".flash-success").inner_text()

    viewer = open_page("viewer@walk.test")
    viewer.goto(doc)
    assert viewer.locator(".doc-edit, .comment-form, .review-request, .publish-form").count() == 0
    viewer.click("#doc-history")
    viewer.check("#from-2")  # published version 1 (revision 2) against version 2 (revision 4)
    viewer.check("#to-4")
    viewer.click("form.compare-pick button")
    assert viewer.locator(".cmp-section[data-section=summary] .cmp-right ins.diff-add").count() >= 1
    viewer.goto(f"/incidents/{iid}/action-items")
    assert viewer.locator("table tbody tr").count() >= 1  # the published text's action items, tracked
    viewer.goto(doc)
    pdf = viewer.request.get(viewer.locator("#doc-pdf").get_attribute("href"))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
