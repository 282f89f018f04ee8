"""The Postmortem card while a draft is held mid-way, in a real browser: the step and its time follow the worker
live (the card polls itself), then the draft replaces them; the wait before Regenerate is one neutral countdown.

The engine is the conftest's GatedEngine (the built-in engine behind a gate); the server's clock is frozen, so the
test moves it to make time pass for the card.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs import service as orgs
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun, Postmortem
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow
STEP_TIME = "#postmortem-card .pm-step-time"


@pytest.fixture(scope="module")
def held(live):
    """An organization whose resolved incident's draft is held at the engine's gate; its member and incident id."""
    live.engine.gate.clear()
    live.engine.entered.clear()
    now = live.clock.now()
    with db.transaction(live.rt.factory) as s:
        org = orgs.create_org(session=s, slug="progress", name="Progress Co", plan="pro", now=now)
        member = orgs.actor_for(orgs.create_user(session=s, email="member@progress.test", org=org, role="member",
                                                 password=PASSWORD, now=now))
        inc = incidents.create(session=s, actor=member, now=now,
                               data=IncidentCreate(title="Search latency", services=["search"], severity="SEV-3"))
        incidents.add_update(session=s, actor=member, incident=inc, now=now,
                             data=UpdateCreate(body="Cause: the new index settings doubled query time."))
        postmortems.resolve_incident(session=s, incident=inc, now=now, resolved_at=None, by_label=member.label,
                                     by_user_id=member.user_id)
        incident_id = inc.id
    return {"email": "member@progress.test", "incident_id": incident_id}


def text_is(page, selector: str, expected: str) -> None:
    """Wait until the element's text is `expected` (the card swaps itself every 2 s)."""
    page.wait_for_function("([sel, want]) => document.querySelector(sel)?.textContent.trim() === want",
                           arg=[selector, expected], timeout=15_000)


def test_card_follows_the_held_draft_step_by_step_then_shows_it(live, held, open_page):
    page = open_page(held["email"])
    page.goto(f"/incidents/{held['incident_id']}")
    assert live.engine.entered.wait(timeout=15), "the worker never picked the job up"
    step = page.locator("#postmortem-card .pm-step")
    step.wait_for()
    # the built-in engine behind the gate: still gathering, or writing if the worker reports that step for it too
    assert step.inner_text() in ("Gathering evidence…", "Writing the draft…")
    assert "usually take under a minute" in page.locator("#postmortem-card .pm-expect").inner_text()
    page.evaluate("window.__notReloaded = 'still here'")

    live.clock.advance(seconds=23)
    text_is(page, STEP_TIME, "23 s")

    with db.transaction(live.rt.factory) as s:  # the worker moves on, as a model engine reports its steps
        pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == held["incident_id"]))
        run = s.scalar(select(GenerationRun).where(GenerationRun.postmortem_id == pm.id))
        assert postmortems.set_step(session=s, pm_id=pm.id, attempt=pm.attempt, run_id=run.id, step="asking_model",
                                    now=live.clock.now())
    live.clock.advance(seconds=5)
    text_is(page, "#postmortem-card .pm-step", "Writing the draft…")
    text_is(page, STEP_TIME, "5 s")
    assert page.locator("#postmortem-card .pm-elapsed").inner_text() == "(28 s in all)"
    assert page.locator("#postmortem-card .pm-steps [aria-current=step]").inner_text() == "Writing the draft"

    live.engine.gate.set()
    text_is(page, "#postmortem-card .pm-status", "Draft")
    assert page.locator("#postmortem-card .pm-progress").count() == 0
    assert page.evaluate("window.__notReloaded") == "still here"  # swapped in by htmx, never reloaded


def test_regenerate_wait_is_one_neutral_countdown(live, held, open_page):
    page = open_page(held["email"])
    page.goto(f"/incidents/{held['incident_id']}")
    card = page.locator("#postmortem-card")
    assert "Available again in" in card.locator(".pm-regenerate-wait").inner_text()  # said before any click
    card.locator("button", has_text="Regenerate").click()
    notice = card.locator(".notice-wait")
    notice.wait_for()
    assert notice.get_attribute("role") == "status"
    assert card.locator(".notice-error").count() == 0
    assert card.locator("[data-countdown]").count() == 1  # one countdown on the card, not two
    first = int(card.locator("[data-countdown]").get_attribute("data-countdown"))
    page.wait_for_function(  # app.js counts it down in the browser
        "(n) => Number(document.querySelector('#postmortem-card [data-countdown]')?.dataset.countdown) < n",
        arg=first, timeout=5_000)
    assert notice.inner_text().count(" s.") == 1  # the time is written once
