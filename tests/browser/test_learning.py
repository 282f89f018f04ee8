"""Learning across incidents in a real browser, as each of the four roles: the nav's search box finds an update and
opens it, the incident page lists similar incidents with their reasons, and the analytics page draws its charts
with their tables. BLAMETRAIL_SCREENSHOTS=1 also writes docs/screenshots/search.png and analytics.png."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs import service as orgs
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow
ROLES = ("owner", "admin", "member", "viewer")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def history(live):
    now = live.clock.now()
    ids = {}
    with db.transaction(live.rt.factory) as s:
        org = orgs.create_org(session=s, slug="learning", name="Learning Co", plan="pro", now=now)
        users = {role: orgs.create_user(session=s, email=f"{role}@learning.test", org=org, role=role,
                                        password=PASSWORD, now=now) for role in ROLES}
        actor = orgs.actor_for(users["owner"])
        specs = [("Checkout pool exhausted", ["checkout"], "SEV-2", 60, 45),
                 ("Checkout pool exhausted again", ["checkout"], "SEV-1", 30, 20),
                 ("Search index lagging", ["search"], "SEV-3", 10, 90),
                 ("Payments gateway timeouts", ["payments"], "SEV-2", 3, 35)]
        for title, services, sev, days_ago, minutes in specs:
            started = now - timedelta(days=days_ago)
            inc = incidents.create(session=s, actor=actor, now=started, data=IncidentCreate(
                title=title, services=services, severity=sev, started_at=started))
            incidents.add_update(session=s, actor=actor, incident=inc, now=started + timedelta(minutes=5),
                                 data=UpdateCreate(body=f"{title}: the connection pool hit its limit of 50; "
                                                        "we raised it and restarted the workers.",
                                                   at=started + timedelta(minutes=5)))
            incidents.resolve(session=s, incident=inc, now=started + timedelta(minutes=minutes),
                              resolved_at=started + timedelta(minutes=minutes), by_label=actor.label,
                              by_user_id=actor.user_id)
            ids[title] = inc.id
        for inc in s.query(Incident).filter(Incident.org_id == org.id):
            inc.acknowledged_at = inc.started_at + timedelta(minutes=4)
    return ids


@pytest.mark.parametrize("role", ROLES)
def test_search_similar_and_analytics_as_each_role(live, history, open_page, role):
    page = open_page(f"{role}@learning.test")
    page.goto("/incidents")
    page.fill("#nav-search-q", "pool limit")
    page.press("#nav-search-q", "Enter")
    page.wait_for_url("**/search?q=pool+limit*")
    hits = page.locator("li.search-hit[data-kind=update]")
    assert hits.count() == 4
    assert page.locator("li.search-hit mark").first.inner_text().lower() in ("pool", "limit")
    hits.first.locator("a.search-hit-title").click()
    page.wait_for_url("**/incidents/*#upd_*")

    page.goto(f"/incidents/{history['Checkout pool exhausted again']}")
    similar = page.locator("#similar-panel li.similar-item")
    assert similar.first.get_attribute("data-incident") == str(history["Checkout pool exhausted"])
    assert "same service: checkout" in similar.first.locator(".similar-reasons").inner_text()

    page.click("nav.main-nav >> text=Analytics")
    page.wait_for_url("**/analytics")
    assert page.locator("figure.analytics-chart svg[role=img]").count() >= 8
    assert page.locator("#table-months tbody tr").count() >= 12
    rows = page.locator("#table-timings tbody tr")
    assert rows.last.locator("th").inner_text() == "All incidents" and rows.last.locator("td").first.inner_text() == "4"
    page.select_option("#an-group", "severity")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**group_by=severity*")
    assert page.locator("#h-timings").inner_text() == "How fast, by severity"
    with page.expect_download() as download:
        page.click("#analytics-csv")
    assert download.value.suggested_filename.startswith("blametrail-analytics-severity-")


@pytest.mark.skipif(os.environ.get("BLAMETRAIL_SCREENSHOTS") != "1", reason="set BLAMETRAIL_SCREENSHOTS=1 to write them")
def test_write_screenshots(live, history, open_page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page("owner@learning.test", width=1280, height=900)
    page.goto("/search?q=connection+pool")
    page.screenshot(path=str(SCREENSHOTS / "search.png"))
    page.goto("/analytics")
    page.screenshot(path=str(SCREENSHOTS / "analytics.png"), full_page=True)
