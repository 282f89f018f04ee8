"""Action items in a real browser, as the four roles: add one, change its status inline (htmx), filter overdue;
a viewer sees the items but no write controls."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail import db
from blametrail.actions import service as actions
from blametrail.actions.schemas import ActionItemCreate
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate
from blametrail.orgs import service as orgs
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow
ROLES = ("owner", "admin", "member", "viewer")


@pytest.fixture(scope="module")
def org(live):
    rt, now = live.rt, live.clock.now()
    with db.transaction(rt.factory) as s:
        acme = orgs.create_org(session=s, slug="tracking", name="Tracking Co", plan="pro", now=now)
        actors = {r: orgs.actor_for(orgs.create_user(session=s, email=f"{r}@track.test", org=acme, role=r,
                                                     password=PASSWORD, now=now)) for r in ROLES}
        inc = incidents.create(session=s, actor=actors["owner"], now=now,
                               data=IncidentCreate(title="Checkout errors", services=["checkout"]))
        late = actions.create(session=s, actor=actors["owner"], incident_id=inc.id, now=now, data=ActionItemCreate(
            title="Late alert work", owner="sre", due_date=now.date() - timedelta(days=2)))
    return {"incident_id": inc.id, "late_id": late.id}


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_writers_add_and_change_status_inline(live, org, open_page, role):
    page = open_page(f"{role}@track.test")
    page.click("nav >> text=Action items")
    page.wait_for_url("**/action-items")
    page.goto(f"/incidents/{org['incident_id']}/action-items")
    title = f"Add a canary for checkout ({role})"
    page.fill("#new-title", title)
    page.select_option("#new-priority", "high")
    page.fill("#new-owner", "payments-team")
    page.click("text=Add action item >> nth=-1")
    row = page.locator("tr.action-row", has_text=title)
    assert row.count() == 1
    assert "payments-team" in row.inner_text() and "High" in row.inner_text()
    item_id = row.get_attribute("data-id")
    page.select_option(f"#status-{item_id}", "in_progress")
    with page.expect_response(f"**/action-items/{item_id}/status"):
        row.locator("button", has_text="Set").click()
    page.reload()
    assert page.locator(f"#status-{item_id}").input_value() == "in_progress"


def test_overdue_filter_and_highlight(live, org, open_page):
    page = open_page("member@track.test")
    page.goto("/action-items")
    page.check("input[name=overdue]")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url("**overdue=true**")
    rows = page.locator("tr.action-row")
    texts = rows.all_inner_texts()
    assert any("Late alert work" in t for t in texts)
    assert all("Overdue" in t for t in texts)
    assert page.locator(f"tr.action-overdue[data-id='{org['late_id']}']").count() == 1


def test_viewer_sees_no_write_controls(live, org, open_page):
    page = open_page("viewer@track.test")
    page.goto("/action-items")
    assert page.locator("tr.action-row", has_text="Late alert work").count() == 1
    assert page.locator("form.status-form").count() == 0
    page.goto(f"/incidents/{org['incident_id']}/action-items")
    assert page.locator("#new-action-item").count() == 0
    page.goto(f"/action-items/{org['late_id']}")
    assert page.locator("form[action='/action-items/%s']" % org["late_id"]).count() == 0
    assert "Late alert work" in page.locator("h1").inner_text()
