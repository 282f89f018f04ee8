"""Confirmations in a real browser: app.js's dialog before Resolve and Remove member, by keyboard and by mouse;
and the length note of a field with a limit (a longer paste is kept whole, never cut by the browser)."""

from __future__ import annotations

import re

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs import service as orgs
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org(live):
    """One organization with an owner, a member and an open incident carrying one very long update."""
    rt, now = live.rt, live.clock.now()
    with db.transaction(rt.factory) as s:
        acme = orgs.create_org(session=s, slug="confirming", name="Confirming Co", plan="pro", now=now)
        owner = orgs.actor_for(orgs.create_user(session=s, email="owner@confirm.test", org=acme, role="owner",
                                                password=PASSWORD, now=now, name="Olga Owner"))
        member = orgs.actor_for(orgs.create_user(session=s, email="member@confirm.test", org=acme, role="member",
                                                 password=PASSWORD, now=now, name="Max Member"))
        inc = incidents.create(session=s, actor=owner, now=now,
                               data=IncidentCreate(title="Checkout errors", services=["checkout"], severity="SEV-2"))
        long_text = "\n".join(f"line {n}: retrying card authorisation" for n in range(1, 400))
        incidents.add_update(session=s, actor=owner, incident=inc, data=UpdateCreate(body=long_text), now=now)
    return {"incident_id": inc.id, "member_id": member.user_id}


def test_resolve_asks_in_a_dialog_that_the_keyboard_can_answer(live, org, open_page):
    page = open_page("owner@confirm.test")
    page.goto(f"/incidents/{org['incident_id']}")
    dialog = page.locator("#confirm-dialog")

    page.click("text=Resolve incident")
    assert dialog.is_visible()
    assert "marked resolved for everyone" in page.locator("#confirm-dialog-text").inner_text()
    # focus lands on Cancel, so Enter on arrival does nothing irreversible; Escape closes without acting
    assert page.evaluate("document.activeElement.classList.contains('confirm-cancel')")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    page.reload()
    assert page.locator("#incident-status").inner_text() == "Open"

    page.click("text=Resolve incident")
    page.keyboard.press("Shift+Tab")  # from Cancel to the confirming button, then Enter
    assert page.evaluate("document.activeElement.textContent") == "Resolve incident"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#postmortem$"))
    assert page.locator("#incident-status").inner_text() == "Resolved"


def test_remove_member_cancel_keeps_them_and_confirm_removes(live, org, open_page):
    page = open_page("owner@confirm.test")
    page.goto("/settings/members")
    remove = page.locator("button[aria-label='Remove member@confirm.test']")
    remove.click()
    assert "member@confirm.test" in page.locator("#confirm-dialog-text").inner_text()
    page.click("#confirm-dialog .confirm-cancel")
    assert not page.locator("#confirm-dialog").is_visible()
    assert remove.count() == 1 and page.url.endswith("/settings/members")

    remove.click()
    page.click("#confirm-dialog .confirm-ok")
    page.wait_for_load_state()
    assert "was removed from this organization" in page.locator(".flash-success").inner_text()
    assert page.locator("button[aria-label='Remove member@confirm.test']").count() == 0


def test_a_long_paste_is_kept_whole_with_a_note_and_long_updates_collapse(live, org, open_page):
    page = open_page("owner@confirm.test")
    page.goto(f"/incidents/{org['incident_id']}")
    item = page.locator(".timeline-item .long-text")
    assert item.count() == 1
    assert not item.locator("details.show-all > p").is_visible()
    item.locator("summary").click()
    assert item.locator("details.show-all > p").is_visible()
    assert not item.locator(".long-preview").is_visible()

    page.locator("#update-body").fill("x" * 28_000)
    assert page.locator("#update-body").input_value() == "x" * 28_000  # no maxlength: nothing cut
    note = page.locator("#update-body-length")
    assert note.inner_text().startswith("This is 28,000 characters; the limit is 20,000.")
    page.locator("#update-body").fill("short")
    assert not note.is_visible()
