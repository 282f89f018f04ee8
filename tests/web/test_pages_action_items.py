"""Action item pages without JavaScript: forms post and redirect, errors re-render with 422, the repeat decision."""

from __future__ import annotations

import pytest

from blametrail import db
from blametrail.actions.models import ActionItem
from tests.web.test_pages import browser, post, soup, team, text  # noqa: F401 — fixtures

API = "/api/v1"


@pytest.fixture
def world(client, team):  # noqa: F811
    t = team()
    r = client.post(f"{API}/incidents", json={"title": "Down", "services": ["checkout"]}, headers=t["owner"].headers)
    return {**t, "inc": r.json()["id"]}


def test_add_edit_and_status_without_js(browser, world, rt):  # noqa: F811
    c = browser(world["member"])
    r = post(c, f"/incidents/{world['inc']}/action-items", {"title": "", "priority": "high"})
    assert r.status_code == 422 and soup(r).select_one(".form-error")
    r = post(c, f"/incidents/{world['inc']}/action-items", {"title": "Add canary", "priority": "high",
                                                           "owner": world["admin"].email, "due_date": ""})
    assert r.status_code == 200  # followed the 303 back to the incident's items
    row = soup(r).select_one("tr.action-row")
    item_id = int(row["data-id"])
    assert "Add canary" in text(row)
    r = post(c, f"/action-items/{item_id}/status", {"status": "done", "next": "//evil.example"},
             follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/action-items"
    r = post(c, f"/action-items/{item_id}/status", {"status": "in_progress"}, headers={"hx-request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith("<tr")
    assert post(c, f"/action-items/{item_id}/status", {"status": "closed"}).status_code == 422
    r = post(c, f"/action-items/{item_id}", {"title": "Add canary deploys", "status": "open", "priority": "low",
                                             "owner": "", "due_date": "2026-12-31"})
    assert r.status_code == 200 and "Add canary deploys" in text(soup(r).select_one("h1"))
    assert post(c, f"/action-items/{item_id}", {"title": "x", "due_date": "soon"}).status_code == 422
    with db.transaction(rt.factory) as s:
        item = s.get(ActionItem, item_id)
        assert (item.status, item.owner, str(item.due_date)) == ("open", None, "2026-12-31")


def test_repeat_banner_close_and_keep(browser, world, rt, clock):  # noqa: F811
    member = world["member"].actor
    with db.transaction(rt.factory) as s:
        old = ActionItem(org_id=member.org_id, incident_id=world["inc"], title="Alert on errors", service="checkout",
                         evidence=[], created_at=clock.now(), updated_at=clock.now())
        s.add(old)
        s.flush()
        new = ActionItem(org_id=member.org_id, incident_id=world["inc"], title="Alert on the errors",
                         service="checkout", evidence=[], duplicate_of_id=old.id, created_at=clock.now(),
                         updated_at=clock.now())
        s.add(new)
        s.flush()
        old_id, new_id = old.id, new.id
    viewer = browser(world["viewer"])
    page = viewer.get(f"/action-items/{new_id}")
    assert f"Repeats #{old_id}" in text(soup(page)) and "same service and intent" in text(soup(page))
    assert not soup(page).select("form[action$=close-duplicate]")
    assert post(viewer, f"/action-items/{new_id}/keep-separate").status_code == 403
    c = browser(world["member"])
    assert soup(c.get(f"/action-items/{new_id}")).select("form[action$=close-duplicate]")
    post(c, f"/action-items/{new_id}/close-duplicate")
    post(c, f"/action-items/{new_id}/keep-separate")
    with db.transaction(rt.factory) as s:
        item = s.get(ActionItem, new_id)
        assert (item.status, item.duplicate_of_id) == ("wont_do", None)


def test_foreign_items_are_404_and_empty_states(browser, world, team):  # noqa: F811
    other = team()
    c = browser(other["member"])
    r = c.get("/action-items")
    assert "No action items yet" in text(soup(r))
    assert c.get(f"/incidents/{world['inc']}/action-items").status_code == 404
    mine = browser(world["member"])
    r = post(mine, f"/incidents/{world['inc']}/action-items", {"title": "t"})
    item_id = soup(r).select_one("tr.action-row")["data-id"]
    assert c.get(f"/action-items/{item_id}").status_code == 404
    assert post(c, f"/action-items/{item_id}/status", {"status": "done"}).status_code == 404
    assert "No action items match" in text(soup(mine.get("/action-items?status=done")))
    assert mine.get("/action-items?incident_id=abc").status_code == 422
