"""In Chromium: the session ends while someone types an update; sending it shows the login page, and logging in
brings them back to the incident page (not a 405) with the text back in the form, unsent until they send it."""

from __future__ import annotations

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate
from blametrail.orgs import service as orgs
from tests.browser.conftest import PASSWORD

EMAIL = "typist@expiry.test"


@pytest.fixture(scope="module")
def incident_id(live) -> int:
    now = live.clock.now()
    with db.transaction(live.rt.factory) as s:
        org = orgs.create_org(session=s, slug="expiry", name="Expiry Co", plan="pro", now=now)
        member = orgs.actor_for(orgs.create_user(session=s, email=EMAIL, org=org, role="member", password=PASSWORD,
                                                 now=now))
        return incidents.create(session=s, actor=member, now=now, data=IncidentCreate(
            title="Search timeouts", services=["search"], severity="SEV-3")).id


def test_text_typed_when_the_session_ends_comes_back_after_login(live, open_page, incident_id):
    page = open_page(EMAIL)
    page.goto(f"/incidents/{incident_id}")
    typed = "Rolled back search to v5.1.9; p99 back under 300 ms.\nStill watching the cache hit rate."
    page.fill("#update-body", typed)
    with db.transaction(live.rt.factory) as s:  # the session ends (as when it expires) while they type
        orgs.set_password(session=s, email=EMAIL, password=PASSWORD)
    page.click("text=Post update")
    page.wait_for_selector("#login-expired")
    assert "what you typed is kept" in page.locator("#login-expired").inner_text()
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"**/incidents/{incident_id}")
    assert page.locator("#update-body").input_value() == typed
    assert "back in this form" in page.locator(".restored-notice").inner_text()
    assert page.locator("li.source-update").count() == 0  # nothing was sent for them
    page.reload()  # restored once: a reload shows the empty form again
    assert page.locator("#update-body").input_value() == ""
    page.fill("#update-body", typed)
    page.click("text=Post update")
    page.wait_for_load_state()
    assert page.locator(".flash-success").inner_text() == "Update posted."
