"""The rough edges of issue 14, with the TestClient: confirmations without JavaScript, webhook URLs from the
address the server is reached at, right-to-left text isolated, over-long text refused (never cut), long updates
collapsed, and error pages that keep the nav of a signed-in person."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.models import TimelineEntry
from blametrail.incidents.schemas import UpdateCreate
from blametrail.orgs import service as orgs
from blametrail.web import deps, errors
from tests.web.test_pages import (  # noqa: F401 — fixtures
    browser,
    csrf,
    drafted_incident,
    form_fields,
    login,
    open_incident,
    pm_row,
    post,
    soup,
    team,
    text,
)

PUBLIC = "https://blametrail.example.com"


@pytest.fixture
def settings(settings, request):
    """The suite's settings; a test parametrized indirectly sets BLAMETRAIL_PUBLIC_URL to its parameter."""
    public = getattr(request, "param", None)
    return settings.model_copy(update={"public_url": public}) if public else settings


def incident_status(rt, member, incident_id: int) -> str:
    with db.transaction(rt.factory) as s:
        return incidents.get_or_404(session=s, org_id=member.actor.org_id, incident_id=incident_id).status


def answer(c: TestClient, page) -> object:
    """Submit the confirmation page's form as a browser would."""
    form = page.select_one("form.confirm-form")
    data = {k: v[-1] for k, v in form_fields(form).items()}
    return c.post(form["action"], data=data, follow_redirects=False)


# --- item 5: confirmations -------------------------------------------------------------------------------------

def test_resolve_without_confirmation_asks_on_a_page_and_changes_nothing(browser, team, rt):
    t = team()
    incident_id = open_incident(rt, t["member"])
    c = browser(t["member"])
    form = soup(c.get(f"/incidents/{incident_id}")).select_one("form.resolve-form")
    assert form["data-confirm-dialog"] and form.select_one("input[name=confirm]")["value"] == ""

    r = post(c, f"/incidents/{incident_id}/resolve")
    assert r.status_code == 409
    page = soup(r)
    assert text(page.select_one("#confirm-heading")) == f"Resolve incident #{incident_id}?"
    assert page.select_one(".main-nav") is not None
    assert page.select_one("form.confirm-form")["action"] == f"/incidents/{incident_id}/resolve"
    assert incident_status(rt, t["member"], incident_id) == "open"

    r = answer(c, page)
    assert r.status_code == 303 and r.headers["location"].endswith("#postmortem")
    assert incident_status(rt, t["member"], incident_id) == "resolved"


def test_resolve_refusals_come_before_the_question(browser, team, rt):
    t, other = team(), team()
    incident_id = open_incident(rt, t["owner"])
    assert post(browser(t["viewer"]), f"/incidents/{incident_id}/resolve").status_code == 403
    assert post(browser(other["owner"]), f"/incidents/{incident_id}/resolve").status_code == 404


def test_publish_asks_first_and_the_card_form_carries_the_dialog(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["member"])
    c = browser(t["admin"])
    form = soup(c.get(f"/incidents/{incident_id}")).select_one("form.publish-form")
    assert "published version" in form["data-confirm-dialog"] and form["data-confirm-button"] == "Publish"
    assert form.select_one("input[name=confirm]") is not None

    r = post(c, f"/incidents/{incident_id}/postmortem/publish")
    assert r.status_code == 409 and "Publish the postmortem" in text(soup(r).select_one("#confirm-heading"))
    assert pm_row(rt, t["admin"].actor.org_id, incident_id).status == "draft"
    assert post(browser(t["member"]), f"/incidents/{incident_id}/postmortem/publish").status_code == 403

    assert answer(c, soup(r)).status_code == 303
    assert pm_row(rt, t["admin"].actor.org_id, incident_id).status == "published"


def test_remove_member_asks_first(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    victim = t["member"].actor.user_id
    form = soup(c.get("/settings/members")).select_one(f"form[action='/settings/members/{victim}/remove']")
    assert t["member"].email in form["data-confirm-dialog"]

    r = post(c, f"/settings/members/{victim}/remove")
    assert r.status_code == 409 and t["member"].email in text(soup(r).select_one("#confirm-question"))
    with db.transaction(rt.factory) as s:
        assert len(orgs.list_members(session=s, org_id=t["owner"].actor.org_id)) == 4

    r = answer(c, soup(r))
    assert r.status_code == 303
    with db.transaction(rt.factory) as s:
        assert len(orgs.list_members(session=s, org_id=t["owner"].actor.org_id)) == 3


def test_turning_ai_off_asks_first_turning_it_on_does_not(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    form = soup(c.get("/settings")).select_one("form.ai-form")
    assert "Turn AI features off?" in form["data-confirm-dialog"]

    r = post(c, "/settings/ai", {"ai_enabled": "false"})
    assert r.status_code == 409
    with db.transaction(rt.factory) as s:
        assert orgs.get_org(session=s, org_id=t["owner"].actor.org_id).ai_enabled is True
    assert answer(c, soup(r)).status_code == 303
    with db.transaction(rt.factory) as s:
        assert orgs.get_org(session=s, org_id=t["owner"].actor.org_id).ai_enabled is False

    assert not soup(c.get("/settings")).select_one("form.ai-form").has_attr("data-confirm-dialog")
    r = post(c, "/settings/ai", {"ai_enabled": "true"}, follow_redirects=False)
    assert r.status_code == 303


# --- item 7: webhook URLs --------------------------------------------------------------------------------------

def create_webhook(c: TestClient):
    return post(c, "/settings/webhooks", {"kind": "alertmanager", "name": "prod", "default_severity": "SEV-3",
                                         "open_incidents": "on"})


def test_webhook_urls_use_the_address_the_server_is_reached_at(app, team, rt):
    t = team()
    with TestClient(app, base_url="http://blametrail.internal:9090") as c:
        c.headers["accept"] = "text/html"
        assert login(c, t["owner"].email).status_code == 303
        r = create_webhook(c)
        assert r.status_code == 200
        page = soup(r)
        url = text(page.select_one("#webhook-url"))
        assert url.startswith("http://blametrail.internal:9090/webhooks/alertmanager/")
        assert f'url: "{url}"' in page.select_one(".webhook-snippet").get_text()
        assert ":8000" not in r.text and page.select_one(".public-url-warning") is None
        listing = c.get("/settings/webhooks", headers={"host": "alerts.example.org:8443"})
        assert text(soup(listing).select_one(".webhook-url")).startswith("http://alerts.example.org:8443/webhooks/")


@pytest.mark.parametrize("settings", [PUBLIC], indirect=True)
def test_a_configured_public_url_wins_and_a_different_host_is_warned_about(app, team, rt):
    t = team()
    with TestClient(app, base_url="http://10.0.0.5:9090") as c:
        c.headers["accept"] = "text/html"
        assert login(c, t["owner"].email).status_code == 303
        page = soup(create_webhook(c))
        assert text(page.select_one("#webhook-url")).startswith(f"{PUBLIC}/webhooks/alertmanager/")
        warning = text(page.select_one(".public-url-warning"))
        assert PUBLIC in warning and "http://10.0.0.5:9090" in warning
    with TestClient(app, base_url=PUBLIC) as c:
        c.headers["accept"] = "text/html"
        assert login(c, t["owner"].email).status_code == 303
        page = soup(c.get("/settings/webhooks"))
        assert text(page.select_one(".webhook-url")).startswith(f"{PUBLIC}/webhooks/")
        assert page.select_one(".public-url-warning") is None


# --- item 8: right-to-left, limits, long updates, error pages --------------------------------------------------

RTL_TITLE = "שגיאות בקופה"


def test_right_to_left_text_is_isolated_from_its_neighbours(browser, team, rt):
    t = team()
    incident_id = open_incident(rt, t["owner"], title=RTL_TITLE, services=("קופה", "search"))
    c = browser(t["owner"])
    row = soup(c.get("/incidents")).select_one(f"tr.incident-row[data-id='{incident_id}']")
    link = row.select_one("a.incident-link")
    assert text(link.select_one("bdi")) == RTL_TITLE
    assert text(link.find_next_sibling("span")) == f"#{incident_id}"  # the number sits outside the isolate
    assert sorted(text(b) for b in row.select("td bdi")[1:]) == sorted(["קופה", "search"])
    page = soup(c.get(f"/incidents/{incident_id}"))
    assert page.select_one("#incident-title")["dir"] == "auto"
    assert page.select_one("#update-body")["dir"] == "auto"


def test_an_update_over_the_limit_is_refused_whole_with_its_length(browser, team, rt):
    t = team()
    incident_id = open_incident(rt, t["member"])
    c = browser(t["member"])
    field = soup(c.get(f"/incidents/{incident_id}")).select_one("#update-body")
    assert not field.has_attr("maxlength") and field["data-maxlength"] == "20000"

    pasted = "x" * 28_000
    r = post(c, f"/incidents/{incident_id}/updates", {"body": pasted})
    assert r.status_code == 422
    page = soup(r)
    message = text(page.select_one("#update-errors"))
    assert "28,000 characters" in message and "the limit is 20,000" in message and "Nothing was saved or cut" in message
    assert page.select_one("#update-body").text == pasted  # kept whole in the form, not cut
    with db.transaction(rt.factory) as s:
        bodies = s.scalars(select(TimelineEntry.body).where(TimelineEntry.incident_id == incident_id,
                                                            TimelineEntry.kind == "update")).all()
    assert bodies == []
    assert post(c, f"/incidents/{incident_id}/updates", {"body": "x" * 20_000},
                follow_redirects=False).status_code == 303  # exactly the limit is fine


def test_a_new_incident_title_over_the_limit_is_refused_with_its_length(browser, team, rt):
    t = team()
    c = browser(t["member"])
    assert not soup(c.get("/incidents")).select_one("#new-title").has_attr("maxlength")
    r = post(c, "/incidents", {"title": "t" * 301, "severity": "", "services": "", "description": ""})
    assert r.status_code == 422
    assert "Title is 301 characters long; the limit is 300." in text(soup(r).select_one(".form-error"))


def test_long_updates_are_collapsed_behind_show_all(browser, team, rt):
    t = team()
    incident_id = open_incident(rt, t["member"])
    long_text = "\n".join(f"line {n}: retrying card authorisation" for n in range(1, 400))
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=t["member"].actor.org_id, incident_id=incident_id)
        incidents.add_update(session=s, actor=t["member"].actor, incident=inc, data=UpdateCreate(body=long_text),
                             now=rt.clock.now())
        incidents.add_update(session=s, actor=t["member"].actor, incident=inc, data=UpdateCreate(body="Short one."),
                             now=rt.clock.now())
    page = soup(browser(t["member"]).get(f"/incidents/{incident_id}"))
    (collapsed,) = page.select(".timeline-item .long-text")
    assert "Show all" in text(collapsed.select_one("details.show-all > summary"))
    assert collapsed.select_one("details.show-all")["class"] == ["show-all"] and not collapsed.select_one(
        "details[open]")
    assert collapsed.select_one("details.show-all > p").text == long_text  # the whole text, once opened
    preview = collapsed.select_one(".long-preview").text
    assert preview.startswith("line 1:") and "line 9:" not in preview
    assert any(text(p) == "Short one." for p in page.select(".timeline-item > p.timeline-text"))


def test_error_pages_keep_the_nav_when_signed_in(app, browser, team, rt):
    t = team()
    c = browser(t["viewer"])
    missing = c.get("/incidents/999999")
    assert missing.status_code == 404 and soup(missing).select_one(".main-nav") is not None
    assert text(soup(missing).select_one(".user-name")) == t["viewer"].actor.label
    unknown = c.get("/no/such/page")
    assert unknown.status_code == 404 and soup(unknown).select_one(".main-nav") is not None
    forbidden = post(c, f"/incidents/{open_incident(rt, t['owner'])}/resolve")
    assert forbidden.status_code == 403 and soup(forbidden).select_one(".main-nav") is not None

    anonymous = browser().get("/no/such/page")
    assert anonymous.status_code == 404 and soup(anonymous).select_one(".main-nav") is None


def test_a_server_error_page_keeps_the_nav(app, team):
    t = team()

    def boom():
        raise RuntimeError("boom")

    app.app.add_api_route("/test-boom", boom)  # app is the ASGI wrapper; .app the FastAPI app
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["accept"] = "text/html"
        assert login(c, t["member"].email).status_code == 303
        r = c.get("/test-boom")
        assert r.status_code == 500 and soup(r).select_one(".main-nav") is not None


def test_the_error_pages_read_the_same_session_cookie_key_as_the_pages():
    assert errors.SESSION_KEY == deps.SESSION_KEY
