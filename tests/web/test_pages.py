"""HTML pages: login and setup, incidents, the Postmortem card by role and plan, the editor, history, settings."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs import service as orgs
from blametrail.orgs.models import MonthlyUsage, Organization
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun, Postmortem
from blametrail.web.presenters import postmortem_markdown

PASSWORD = "correct-horse-battery"
ROLES = ("owner", "admin", "member", "viewer")


# --- helpers ------------------------------------------------------------------------------------

def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def text(node) -> str:
    return " ".join(node.get_text().split()) if node is not None else ""


def csrf(client: TestClient) -> str:
    token = client.cookies.get("csrftoken")
    if token is None:
        client.get("/login")
        token = client.cookies.get("csrftoken")
    return token


def post(client: TestClient, url: str, data: dict | None = None, **kwargs):
    """Post a form the way a browser does: with the CSRF token from the cookie the pages set."""
    return client.post(url, data={**(data or {}), "csrftoken": csrf(client)}, **kwargs)


def login(client: TestClient, email: str, password: str = PASSWORD, next_url: str | None = None):
    """GET /login (receives the csrftoken cookie), then post the form with it."""
    page = client.get("/login")
    assert page.status_code == 200
    token = soup(page).select_one("form[action='/login'] input[name=csrftoken]")["value"]
    assert token == client.cookies.get("csrftoken")
    data = {"email": email, "password": password, "csrftoken": token}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data, follow_redirects=False)


def form_fields(form) -> dict[str, list[str]]:
    """Collect what a browser would submit for a form (repeated names keep their order)."""
    data: dict[str, list[str]] = {}
    for el in form.select("input, select, textarea"):
        name = el.get("name")
        if not name:
            continue
        if el.name == "textarea":
            value = el.text.removeprefix("\n")
        elif el.name == "select":
            chosen = el.select_one("option[selected]") or el.select_one("option")
            value = chosen.get("value", chosen.text) if chosen else ""
        elif el.get("type") in ("checkbox", "radio"):
            if not el.has_attr("checked"):
                continue
            value = el.get("value", "on")
        else:
            value = el.get("value", "")
        data.setdefault(name, []).append(value)
    return data


@pytest.fixture
def browser(app):
    """Open browsers (one cookie jar each), logged in as a member when given one."""
    opened: list[TestClient] = []

    def open_browser(member=None) -> TestClient:
        c = TestClient(app)
        c.headers["accept"] = "text/html,application/xhtml+xml"
        opened.append(c)
        if member is not None:
            r = login(c, member.email)
            assert r.status_code == 303, r.text
        return c

    yield open_browser
    for c in opened:
        c.close()


@pytest.fixture
def team(factory):
    """An organization with one member per role, all with passwords."""
    def make(plan: str = "pro", ai_enabled: bool = True) -> dict:
        slug = factory.org(plan=plan, ai_enabled=ai_enabled)
        return {role: factory.member(slug, role, password=PASSWORD) for role in ROLES}
    return make


def open_incident(rt, member, title: str = "Checkout errors", services=("checkout",), severity: str | None = "SEV-2",
                  description: str = "") -> int:
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=member.actor, now=rt.clock.now(), data=IncidentCreate(
            title=title, services=list(services), severity=severity, description=description))
        return inc.id


def resolve(rt, member, incident_id: int) -> None:
    """Resolve like the API does (auto-trigger included); the in-test queue drafts at once."""
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=member.actor.org_id, incident_id=incident_id)
        postmortems.resolve_incident(session=s, incident=inc, now=rt.clock.now(), resolved_at=None,
                                     by_label=member.actor.label, by_user_id=member.actor.user_id)


def drafted_incident(rt, clock, member, **kwargs) -> int:
    incident_id = open_incident(rt, member, **kwargs)
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=member.actor.org_id, incident_id=incident_id)
        incidents.add_update(session=s, actor=member.actor, incident=inc, now=clock.advance(minutes=5),
                             data=UpdateCreate(body="Rolled back checkout v2.3; error rate back to normal."))
    clock.advance(minutes=10)
    resolve(rt, member, incident_id)
    return incident_id


def set_ai(rt, org_id: int, enabled: bool) -> None:
    with db.transaction(rt.factory) as s:
        orgs.set_ai_enabled(session=s, org_id=org_id, enabled=enabled)


def undrafted_resolved_incident(rt, member) -> int:
    """A resolved incident without a postmortem: AI was off when it resolved, and is on again."""
    set_ai(rt, member.actor.org_id, False)
    incident_id = open_incident(rt, member, title="Queue backlog")
    resolve(rt, member, incident_id)
    set_ai(rt, member.actor.org_id, True)
    return incident_id


def pm_row(rt, org_id: int, incident_id: int) -> Postmortem | None:
    with db.transaction(rt.factory) as s:
        return postmortems.find(session=s, org_id=org_id, incident_id=incident_id)


def card(client: TestClient, incident_id: int):
    r = client.get(f"/incidents/{incident_id}/postmortem/card")
    assert r.status_code == 200, r.text
    node = soup(r).select_one("section#postmortem-card")
    assert node is not None
    return node


def buttons(node) -> list[str]:
    return [text(b) for b in node.select("button")]


# --- login, logout, CSRF, setup -------------------------------------------------------------------

def test_login_ok_shows_user_and_role_in_nav(browser, team):
    t = team()
    c = browser()
    r = login(c, t["admin"].email)
    assert r.status_code == 303
    assert r.headers["location"] == "/incidents"
    page = soup(c.get("/incidents"))
    nav = page.select_one("header nav[aria-label=Main]")
    assert [text(a) for a in nav.select("a")] == ["Incidents", "Action items", "Analytics", "Settings"]
    assert text(page.select_one(".user-name")) == t["admin"].email
    assert text(page.select_one(".user-box .role-badge")) == "admin"
    assert text(page.select_one("form[action='/logout'] button")) == "Log out"
    assert page.select_one("main#main") is not None


def test_login_wrong_password_shows_the_form_again(browser, team):
    t = team()
    c = browser()
    r = login(c, t["owner"].email, password="not-the-password")
    assert r.status_code == 400
    page = soup(r)
    assert text(page.select_one(".form-error")) == "Wrong email or password."
    assert page.select_one("input#login-email")["value"] == t["owner"].email
    assert c.cookies.get("blametrail_session") is None
    assert c.get("/incidents", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(("next_url", "expected"), [
    ("/incidents/7?tab=timeline", "/incidents/7?tab=timeline"),
    ("/settings", "/settings"),
    ("//evil.example/path", "/incidents"),
    ("/\\evil.example", "/incidents"),
    ("https://evil.example/", "/incidents"),
    ("javascript:alert(1)", "/incidents"),
    ("", "/incidents"),
])
def test_login_redirects_only_to_local_next(browser, team, next_url, expected):
    t = team()
    r = login(browser(), t["member"].email, next_url=next_url)
    assert r.status_code == 303
    assert r.headers["location"] == expected


def test_unauthenticated_page_redirects_to_login_with_next(browser, team):
    team()
    r = browser().get("/settings", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/settings"


def test_login_replaces_the_session_cookie_and_ends_the_old_session(browser, team):
    t = team()
    c = browser()
    c.post("/logout", data={"csrftoken": csrf(c)}, follow_redirects=False)  # leaves a pre-login session (a flash)
    planted = c.cookies.get("blametrail_session")
    assert planted
    assert login(c, t["owner"].email).status_code == 303
    first = c.cookies.get("blametrail_session")
    assert first and first != planted
    again = c.post("/login", data={"email": t["admin"].email, "password": PASSWORD, "csrftoken": csrf(c)},
                   follow_redirects=False)
    assert again.status_code == 303  # logging in again, while logged in, starts a brand-new session
    second = c.cookies.get("blametrail_session")
    assert second and second != first
    assert text(soup(c.get("/incidents")).select_one(".user-box .role-badge")) == "admin"
    replay = browser()
    replay.cookies.set("blametrail_session", first)
    assert replay.get("/incidents", follow_redirects=False).status_code == 303  # the old key no longer works


def test_logout_ends_the_session(browser, team):
    t = team()
    c = browser(t["owner"])
    old_cookie = c.cookies.get("blametrail_session")
    r = c.post("/logout", data={"csrftoken": csrf(c)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/incidents", follow_redirects=False).status_code == 303
    replay = browser()
    replay.cookies.set("blametrail_session", old_cookie)
    assert replay.get("/incidents", follow_redirects=False).headers["location"].startswith("/login")
    assert "You are logged out." in text(soup(c.get("/login")).select_one(".flash"))


def test_form_post_without_csrf_token_is_rejected(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = c.post("/incidents", data={"title": "No token"})
    assert r.status_code == 403
    r = c.post("/incidents", data={"title": "Wrong token", "csrftoken": "forged"})
    assert r.status_code == 403
    fresh = browser()
    assert fresh.post("/login", data={"email": t["owner"].email, "password": PASSWORD}).status_code == 403
    with db.transaction(rt.factory) as s:
        assert incidents.list_incidents(session=s, org_id=t["owner"].actor.org_id)[0] == []


def test_htmx_requests_send_the_token_in_a_header(browser, team, rt, clock):
    t = team()
    incident_id = undrafted_resolved_incident(rt, t["member"])
    c = browser(t["member"])
    body = soup(c.get(f"/incidents/{incident_id}")).select_one("body")
    assert '"x-csrftoken"' in body["hx-headers"]
    r = c.post(f"/incidents/{incident_id}/postmortem/generate",
               headers={"HX-Request": "true", "x-csrftoken": c.cookies.get("csrftoken")})
    assert r.status_code == 200
    fragment = soup(r)
    assert fragment.select_one("html") is None  # a fragment, not a page
    node = fragment.select_one("section#postmortem-card")
    assert node["data-status"] == "queued"  # rendered before the commit that hands the job to the queue
    assert node["hx-trigger"] == "every 2s"
    assert "Postmortem queued" in text(fragment.select_one(".notice-success"))
    assert card(c, incident_id)["data-status"] == "draft"  # the next poll shows the finished draft


def test_setup_creates_the_first_owner_once(browser, rt, clock):
    c = browser()
    r = c.get("/setup?token=whatever")
    assert r.status_code == 200
    assert soup(r).select_one("form[action='/setup'] input[name=token]")["value"] == "whatever"
    with db.transaction(rt.factory) as s:
        token = orgs.create_setup_token(session=s, now=clock.now())
    fields = {"org_name": "Acme SRE", "org_slug": "", "email": "first@acme.test", "password": PASSWORD}
    r = post(c, "/setup", {**fields, "token": "wrong-token"})
    assert r.status_code == 403
    assert "setup link is invalid" in text(soup(r).select_one(".form-error"))
    with db.transaction(rt.factory) as s:
        assert orgs.user_count(session=s) == 0
        assert s.scalar(select(Organization.id)) is None  # nothing half-created
    r = post(c, "/setup", {**fields, "token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/incidents"
    page = soup(c.get("/incidents"))
    assert text(page.select_one(".user-box .role-badge")) == "owner"
    assert text(page.select_one(".user-name")) == "first@acme.test"
    with db.transaction(rt.factory) as s:
        assert orgs.get_org_by_slug(session=s, slug="acme-sre").plan == "pro"
    again = browser()
    r = again.get(f"/setup?token={token}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = post(again, "/setup", {**fields, "email": "second@acme.test", "token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    with db.transaction(rt.factory) as s:
        assert orgs.user_count(session=s) == 1


def test_root_redirects_to_incidents(browser, team):
    t = team()
    r = browser(t["viewer"]).get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/incidents"


# --- incidents ------------------------------------------------------------------------------------

def test_incident_list_filters_search_and_pages(browser, team, rt, clock, monkeypatch):
    t = team()
    owner = t["owner"]
    a = open_incident(rt, owner, title="Checkout latency", services=("checkout",), severity="SEV-1")
    b = open_incident(rt, owner, title="Search outage", services=("search", "api"), severity="SEV-2")
    c_id = open_incident(rt, owner, title="Checkout 500s", services=("checkout", "api"), severity="SEV-2")
    resolve(rt, owner, b)
    c = browser(t["viewer"])

    def titles(url):
        r = c.get(url)
        assert r.status_code == 200
        return [text(x) for x in soup(r).select("a.incident-link")]

    assert titles("/incidents") == ["Checkout 500s", "Search outage", "Checkout latency"]
    assert titles("/incidents?status=resolved") == ["Search outage"]
    assert titles("/incidents?status=open") == ["Checkout 500s", "Checkout latency"]
    assert titles("/incidents?service=api") == ["Checkout 500s", "Search outage"]
    assert titles("/incidents?severity=SEV-2&service=checkout") == ["Checkout 500s"]
    assert titles("/incidents?q=checkout") == ["Checkout 500s", "Checkout latency"]
    page = soup(c.get("/incidents?q=nothing-matches"))
    assert text(page.select_one(".empty")) == "No incidents match these filters."
    assert page.select_one("#filter-q")["value"] == "nothing-matches"
    row = soup(c.get("/incidents?status=resolved")).select_one("tr.incident-row")
    assert text(row.select(".badge")[-1]) == "Draft"  # postmortem status column

    monkeypatch.setattr("blametrail.web.pages.incidents.PAGE_SIZE", 2)
    first = soup(c.get("/incidents?service=checkout&q=checkout"))
    assert [text(x) for x in first.select("a.incident-link")] == ["Checkout 500s", "Checkout latency"]
    assert first.select_one("a.next-page") is None
    first = soup(c.get("/incidents"))
    next_href = first.select_one("a.next-page")["href"]
    assert next_href == f"/incidents?cursor={b}"
    assert titles(next_href) == ["Checkout latency"]
    assert a and c_id


def test_create_incident_via_form(browser, team):
    t = team()
    c = browser(t["member"])
    page = soup(c.get("/incidents"))
    form = page.select_one("form[action='/incidents'][method=post]")
    for field_id in ("new-title", "new-severity", "new-services", "new-description"):
        assert page.select_one(f"label[for={field_id}]") is not None
    r = post(c, "/incidents", {"title": "Payments timing out", "severity": "SEV-1", "services": "payments, api ,",
                               "description": "Card payments time out after 30 s."}, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    assert re.fullmatch(r"/incidents/\d+", location)
    detail = soup(c.get(location))
    assert text(detail.select_one("h1#incident-title")) == "Payments timing out"
    assert text(detail.select_one("#incident-severity")) == "SEV-1"
    assert text(detail.select_one("#incident-services")) == "api, payments"
    assert text(detail.select_one("#incident-status")) == "Open"
    assert "Incident #" in text(detail.select_one(".flash-success"))
    assert form is not None

    r = post(c, "/incidents", {"title": "", "severity": "SEV-9"})
    assert r.status_code == 422
    assert soup(r).select(".new-incident-form") and soup(r).select("#new-incident .form-error li")

    viewer = browser(t["viewer"])
    assert soup(viewer.get("/incidents")).select_one("form[action='/incidents'][method=post]") is None
    assert post(viewer, "/incidents", {"title": "Viewer incident"}).status_code == 403


def test_post_update_appears_on_the_timeline(browser, team, rt):
    t = team()
    incident_id = open_incident(rt, t["owner"])
    c = browser(t["member"])
    r = post(c, f"/incidents/{incident_id}/updates", {"body": "Rolled back deploy 42."}, follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    items = page.select("ol.timeline li.timeline-item")
    update_item = items[-1]
    assert text(update_item.select_one(".timeline-text")) == "Rolled back deploy 42."
    assert text(update_item.select_one(".source-badge")) == "update"
    assert re.fullmatch(r"upd_\d+", text(update_item.select_one("code.evidence-id")))
    assert update_item["id"] == text(update_item.select_one("code.evidence-id"))
    assert "UTC" in text(update_item.select_one("time"))
    assert text(items[0].select_one(".source-badge")) == "status"
    r = post(c, f"/incidents/{incident_id}/updates", {"body": "   "})
    assert r.status_code == 422
    assert text(soup(r).select_one("#update-errors")) == "Write the update before posting it."


def test_resolve_queues_and_shows_the_draft(browser, team, rt, clock):
    t = team()
    incident_id = open_incident(rt, t["owner"], title="API 502s", services=("api",))
    c = browser(t["member"])
    post(c, f"/incidents/{incident_id}/updates", {"body": "Deploy api v7 caused 502s; rolled back."})
    clock.advance(minutes=30)
    page = soup(c.get(f"/incidents/{incident_id}"))
    assert text(page.select_one("form.resolve-form button")) == "Resolve incident"
    assert text(page.select_one("#postmortem-card #generate-reason")).startswith("The incident is still open")
    r = post(c, f"/incidents/{incident_id}/resolve", {"confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    assert text(page.select_one("#incident-status")) == "Resolved"
    assert text(page.select_one("#incident-duration")) == "30 min"
    assert text(page.select_one("#incident-resolved-by")) == t["member"].email
    assert page.select_one("form.resolve-form") is None
    pm_card = page.select_one("#postmortem #postmortem-card")
    assert text(pm_card.select_one(".pm-status")) == "Draft"
    assert not pm_card.has_attr("hx-trigger")  # settled: no polling
    assert text(pm_card.select_one(".pm-engine")) == "builtin"
    assert text(pm_card.select_one(".pm-excerpt"))
    assert pm_card.select_one("#pm-open")["href"] == f"/incidents/{incident_id}/postmortem"
    doc = soup(c.get(f"/incidents/{incident_id}/postmortem"))  # the whole text is the document page's
    assert text(doc.select_one("[data-section=summary] p"))
    evidence = [a["data-evidence"] for a in doc.select("[data-section=timeline] a.cite-link")]
    assert any(e.startswith("upd_") for e in evidence)
    action_rows = doc.select("[data-section=action_items] tbody tr")
    assert action_rows and text(action_rows[0].select_one(".badge")) in ("High", "Medium", "Low")
    assert text(doc.select_one("[data-section=confidence] .badge")).split()[0] in ("High", "Medium", "Low")
    links = {text(a): a["href"] for a in pm_card.select(".pm-links a")}
    assert links == {"Original AI draft": f"/incidents/{incident_id}/postmortem/original",
                     "History": f"/incidents/{incident_id}/postmortem/revisions",
                     "Download Markdown": f"/incidents/{incident_id}/postmortem/export.md"}


def test_card_polls_while_queued_and_stops_when_settled(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    with db.transaction(rt.factory) as s:
        s.execute(update(Postmortem).where(Postmortem.incident_id == incident_id).values(status="generating"))
    c = browser(t["viewer"])
    node = card(c, incident_id)
    assert node["hx-get"] == f"/incidents/{incident_id}/postmortem/card"
    assert node["hx-trigger"] == "every 2s"
    assert node["hx-swap"] == "outerHTML"
    assert text(node.select_one(".pm-status")) == "Generating"
    with db.transaction(rt.factory) as s:
        s.execute(update(Postmortem).where(Postmortem.incident_id == incident_id).values(status="draft"))
    node = card(c, incident_id)
    assert text(node.select_one(".pm-status")) == "Draft"
    assert not node.has_attr("hx-get") and not node.has_attr("hx-trigger")


def test_failed_generation_shows_the_reason_and_retry(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    with db.transaction(rt.factory) as s:
        s.execute(update(Postmortem).where(Postmortem.incident_id == incident_id)
                  .values(status="failed", error="Anthropic API key rejected (401)"))
    clock.advance(minutes=2)
    c = browser(t["member"])
    node = card(c, incident_id)
    assert text(node.select_one(".pm-status")) == "Failed"
    assert "Anthropic API key rejected (401)" in text(node.select_one(".pm-error"))
    assert "Retry" in buttons(node)
    r = post(c, f"/incidents/{incident_id}/postmortem/regenerate", follow_redirects=False)
    assert r.status_code == 303
    assert text(card(c, incident_id).select_one(".pm-status")) == "Draft"
    assert buttons(card(browser(t["viewer"]), incident_id)) == []


# --- the card by role, AI switch, plan and quota -------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_see_publish(browser, team, rt, clock, role):
    t = team()
    incident_id = drafted_incident(rt, clock, t["member"])
    node = card(browser(t[role]), incident_id)
    assert buttons(node) == ["Regenerate", "Publish"]
    assert text(node.select_one(".pm-actions-bar a.button")) == "Edit"
    assert node.select_one("input[type=checkbox][name=overwrite_edited]") is not None
    assert text(node.select_one("label[for=overwrite-edited]")) == "Overwrite sections people edited"


def test_member_sees_generate_edit_regenerate_but_not_publish(browser, team, rt, clock):
    t = team()
    drafted = drafted_incident(rt, clock, t["owner"])
    undrafted = undrafted_resolved_incident(rt, t["owner"])
    c = browser(t["member"])
    node = card(c, undrafted)
    assert buttons(node) == ["Generate postmortem"]
    node = card(c, drafted)
    assert buttons(node) == ["Regenerate"]
    assert text(node.select_one(".pm-actions-bar a.button")) == "Edit"
    assert "Publish" not in buttons(node)
    assert "Only owners and admins can publish." in [text(li) for li in node.select(".reasons li")]
    assert post(c, f"/incidents/{drafted}/postmortem/publish").status_code == 403


def test_viewer_sees_no_buttons_and_no_forms(browser, team, rt, clock):
    t = team()
    drafted = drafted_incident(rt, clock, t["owner"])
    undrafted = undrafted_resolved_incident(rt, t["owner"])
    open_id = open_incident(rt, t["owner"], title="Still burning")
    c = browser(t["viewer"])
    for incident_id in (drafted, undrafted, open_id):
        page = soup(c.get(f"/incidents/{incident_id}"))
        main = page.select_one("main")
        assert main.select("form") == [] and main.select("button") == []
        node = main.select_one("#postmortem-card")
        assert node.select(".reason") == [] and node.select(".reasons") == []
    node = card(c, drafted)
    assert node.select("form, button, .pm-actions-bar") == []
    assert text(node.select_one(".pm-status")) == "Draft"
    assert [text(a) for a in node.select(".pm-links a")] == ["Original AI draft", "History", "Download Markdown"]
    assert c.get(f"/incidents/{drafted}/postmortem/edit").status_code == 403
    assert post(c, f"/incidents/{undrafted}/postmortem/generate").status_code == 403
    assert post(c, f"/incidents/{drafted}/postmortem/regenerate").status_code == 403
    assert post(c, f"/incidents/{open_id}/resolve").status_code == 403
    assert post(c, f"/incidents/{open_id}/updates", {"body": "viewer"}).status_code == 403


def test_generate_from_the_card_as_a_plain_form(browser, team, rt):
    t = team()
    incident_id = undrafted_resolved_incident(rt, t["member"])
    c = browser(t["member"])
    r = post(c, f"/incidents/{incident_id}/postmortem/generate", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{incident_id}#postmortem"
    page = soup(c.get(r.headers["location"]))
    assert text(page.select_one("#postmortem-card .pm-status")) == "Draft"
    assert "Postmortem queued" in text(page.select_one(".flash-success"))
    r = post(c, f"/incidents/{incident_id}/postmortem/generate")
    assert r.status_code == 409
    assert "already has a postmortem" in text(soup(r).select_one("#postmortem-card .notice-error"))


def test_ai_off_hides_generate_and_says_why(browser, team, rt):
    t = team(ai_enabled=False)
    incident_id = open_incident(rt, t["owner"])
    resolve(rt, t["owner"], incident_id)
    for role in ("member", "owner"):
        node = card(browser(t[role]), incident_id)
        assert "Generate postmortem" not in buttons(node)
        assert text(node.select_one("#generate-reason")).startswith("AI features are disabled for this organization.")
        assert "AI features are turned off" in text(node.select_one(".skip-reason"))
    assert pm_row(rt, t["owner"].actor.org_id, incident_id) is None


def test_free_plan_shows_the_upgrade_hint(browser, team, rt):
    t = team(plan="free")
    incident_id = open_incident(rt, t["owner"])
    resolve(rt, t["owner"], incident_id)
    node = card(browser(t["admin"]), incident_id)
    assert node.select("button") == []
    hint = text(node.select_one(".reason-upgrade"))
    assert "Free plan does not include AI postmortems" in hint and "Upgrade" in hint
    assert text(node.select_one(".skip-reason"))


def test_quota_used_up_says_when_it_resets(browser, team, rt):
    t = team(plan="starter")
    with db.transaction(rt.factory) as s:
        s.add(MonthlyUsage(org_id=t["owner"].actor.org_id, month="2026-11", used=5))
    incident_id = open_incident(rt, t["owner"])
    resolve(rt, t["owner"], incident_id)
    node = card(browser(t["member"]), incident_id)
    assert node.select("button") == []
    assert text(node.select_one(".reason-quota")) == (
        "5/5 postmortems used this month, resets on 2026-12-01 (UTC).")
    settings_page = soup(browser(t["owner"]).get("/settings"))
    assert "5/5 postmortems used in 2026-11" in text(settings_page.select_one("#usage"))


# --- regenerate, edit, publish, original, history, export -----------------------------------------

def test_regenerate_is_refused_with_the_wait_then_allowed(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["member"])
    c = browser(t["member"])
    clock.advance(seconds=59)
    r = post(c, f"/incidents/{incident_id}/postmortem/regenerate")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    notice = text(soup(r).select_one("#postmortem-card .notice-wait"))  # a wait, not an error (issue 14)
    assert "again in 1 s" in notice and notice.count(" 1 s") == 1  # one countdown, written once
    countdown = soup(r).select_one("#postmortem-card .notice-wait [data-countdown]")
    assert countdown["data-countdown"] == "1"  # app.js counts it down live
    htmx = c.post(f"/incidents/{incident_id}/postmortem/regenerate",
                  headers={"HX-Request": "true", "x-csrftoken": csrf(c)})
    assert htmx.status_code == 429
    assert "again in 1 s" in text(soup(htmx).select_one("section#postmortem-card .notice-wait"))
    clock.advance(seconds=1)
    r = post(c, f"/incidents/{incident_id}/postmortem/regenerate", {"overwrite_edited": "1"}, follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    assert "Regeneration queued" in text(page.select_one(".flash-success"))
    assert text(page.select_one("#postmortem-card .pm-status")) == "Draft"
    with db.transaction(rt.factory) as s:
        pm = postmortems.find(session=s, org_id=t["member"].actor.org_id, incident_id=incident_id)
        assert [r.kind for r in postmortems.list_revisions(session=s, pm=pm)] == ["ai", "ai"]


def edit_form(c: TestClient, incident_id: int):
    r = c.get(f"/incidents/{incident_id}/postmortem/edit")
    assert r.status_code == 200, r.text
    page = soup(r)
    form = page.select_one("form.editor")
    for el in form.select("input:not([type=hidden]), select, textarea"):
        assert page.select_one(f"label[for='{el['id']}']") is not None, el
    return form, form_fields(form)


def test_edit_saves_only_changed_sections_and_status_becomes_edited(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    form, data = edit_form(c, incident_id)
    assert form["action"] == f"/incidents/{incident_id}/postmortem/edit"
    assert len(data["action_title"]) == len(data["action_priority"]) == len(data["action_owner"])
    assert data["action_title"][-3:] == ["", "", ""]  # blank rows to add items
    data["summary"] = ["Checkout v2.3 exhausted the database pool.\r\nRolled back after 15 minutes."]
    blank = data["action_title"].index("")
    data["action_title"][blank] = "Add a pool-saturation alert"
    data["action_priority"][blank] = "high"
    data["action_owner"][blank] = "db-team"
    clock.advance(minutes=3)
    r = c.post(f"/incidents/{incident_id}/postmortem/edit", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/incidents/{incident_id}/postmortem"  # back to the document
    node = soup(c.get(r.headers["location"]))
    assert text(node.select_one(".pm-status")) == "Edited"
    assert text(node.select_one("[data-section=summary] p")) == (
        "Checkout v2.3 exhausted the database pool. Rolled back after 15 minutes.")
    last = node.select("[data-section=action_items] tbody tr")[-1]
    assert [text(td) for td in last.select("td")] == ["Add a pool-saturation alert", "High", "db-team"]
    pm = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert sorted(pm.edited_keys) == ["action_items", "summary"]
    assert pm.sections["summary"] == "Checkout v2.3 exhausted the database pool.\nRolled back after 15 minutes."

    _, again = edit_form(c, incident_id)  # saving an untouched form changes nothing
    r = c.post(f"/incidents/{incident_id}/postmortem/edit", data=again, follow_redirects=False)
    assert r.status_code == 303
    assert pm_row(rt, t["owner"].actor.org_id, incident_id).version == pm.version


def test_edit_with_a_stale_version_shows_the_conflict(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    alice, bob = browser(t["member"]), browser(t["admin"])
    _, alice_data = edit_form(alice, incident_id)
    _, bob_data = edit_form(bob, incident_id)
    bob_data["root_cause"] = ["Bob: connection pool too small for v2.3."]
    assert bob.post(f"/incidents/{incident_id}/postmortem/edit", data=bob_data,
                    follow_redirects=False).status_code == 303
    alice_data["root_cause"] = ["Alice: a slow query."]
    r = alice.post(f"/incidents/{incident_id}/postmortem/edit", data=alice_data)
    assert r.status_code == 409
    page = soup(r)
    assert "Someone else saved this postmortem — review their changes" in text(page.select_one(".conflict"))
    # only the section both changed is listed, theirs beside hers, with a choice (tests/web/test_editor.py)
    assert [s["data-section"] for s in page.select(".conflict-section")] == ["root_cause"]
    assert text(page.select_one(".conflict-section .theirs pre")) == "Bob: connection pool too small for v2.3."
    assert text(page.select_one(".conflict-section .mine pre")) == "Alice: a slow query."
    current = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert page.select_one("form.conflict-form input[name=version]")["value"] == str(current.version)
    assert current.sections["root_cause"] == "Bob: connection pool too small for v2.3."


def test_edit_validation_errors_rerender_with_messages(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    _, data = edit_form(c, incident_id)
    data["impact_duration"] = ["about an hour"]
    data["timeline_description"][-1] = "A new entry"
    data["timeline_at"][-1] = "yesterday"
    data["summary"] = ["Kept while fixing the errors"]
    r = c.post(f"/incidents/{incident_id}/postmortem/edit", data=data)
    assert r.status_code == 422
    page = soup(r)
    errors = [text(li) for li in page.select("#edit-errors li")]
    assert "Customer impact duration must be a whole number of minutes." in errors
    assert any(e.startswith("Timeline row") and "UTC time" in e for e in errors)
    assert page.select_one("textarea#f-summary").text.strip() == "Kept while fixing the errors"
    assert pm_row(rt, t["owner"].actor.org_id, incident_id).status == "draft"


def test_publish_as_admin(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["member"])
    c = browser(t["admin"])
    r = post(c, f"/incidents/{incident_id}/postmortem/publish", {"confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    node = soup(c.get(r.headers["location"])).select_one("#postmortem-card")
    assert text(node.select_one(".pm-status")) == "Published"
    assert buttons(node) == []
    assert t["admin"].email in text(node.select_one(".pm-meta"))
    reasons = [text(li) for li in node.select(".reasons li")]
    assert "Published postmortems cannot be regenerated; edit them instead." in reasons
    assert text(node.select_one(".pm-actions-bar a.button")) == "Edit"  # published postmortems stay editable
    r = post(c, f"/incidents/{incident_id}/postmortem/publish", {"confirm": "yes"})
    assert r.status_code == 409 and "already published" in text(soup(r).select_one(".notice-error"))


def test_original_page_shows_a_diff_against_the_current_text(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    original = pm_row(rt, t["owner"].actor.org_id, incident_id).original_sections
    c = browser(t["member"])
    _, data = edit_form(c, incident_id)
    data["summary"] = ["A <b>human</b> summary."]
    assert c.post(f"/incidents/{incident_id}/postmortem/edit", data=data, follow_redirects=False).status_code == 303
    r = browser(t["viewer"]).get(f"/incidents/{incident_id}/postmortem/original")
    assert r.status_code == 200
    page = soup(r)
    summary = page.select_one("section[data-section=summary]")
    assert text(summary.select_one(".badge")) == "Changed by people"
    removed = [text(li) for li in summary.select("li.diff-del")]
    added = [text(li) for li in summary.select("li.diff-add")]
    assert any(original["summary"] in line for line in removed)
    assert any("A <b>human</b> summary." in line for line in added)
    assert "<b>human</b>" not in r.text and "&lt;b&gt;human&lt;/b&gt;" in r.text
    assert text(page.select_one("section[data-section=root_cause] .badge")) == "Unchanged"
    assert page.select_one("section[data-section=root_cause] li.diff-add") is None


def test_history_lists_every_revision(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["admin"])
    _, data = edit_form(c, incident_id)
    data["root_cause"] = ["Pool exhaustion."]
    c.post(f"/incidents/{incident_id}/postmortem/edit", data=data)
    clock.advance(minutes=1)
    post(c, f"/incidents/{incident_id}/postmortem/publish", {"confirm": "yes"})
    page = soup(browser(t["viewer"]).get(f"/incidents/{incident_id}/postmortem/revisions"))
    rows = [[text(td) for td in tr.select("td")] for tr in page.select("tr.revision-row")]
    assert [r[:4] for r in rows] == [
        ["3", "Publication", "Published", t["admin"].email],
        ["2", "Edit", "Edited", t["admin"].email],
        ["1", "AI draft", "Draft", "builtin"],
    ]
    assert all(r[4].endswith("UTC") for r in rows)


def test_markdown_download_matches_the_api_export(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"], title="Payments | down")
    r = browser(t["viewer"]).get(f"/incidents/{incident_id}/postmortem/export.md")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/markdown")
    assert f'postmortem-{incident_id}.md' in r.headers["content-disposition"]
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=t["owner"].actor.org_id, incident_id=incident_id)
        pm = postmortems.find(session=s, org_id=t["owner"].actor.org_id, incident_id=incident_id)
        assert r.text == postmortem_markdown(inc, pm)
    api = browser().get(f"/api/v1/incidents/{incident_id}/postmortem/export.md", headers=t["owner"].headers)
    assert api.text == r.text


# --- settings -------------------------------------------------------------------------------------

def test_settings_shows_plan_usage_and_members(browser, team, rt, clock):
    t = team(plan="starter")
    drafted_incident(rt, clock, t["owner"])
    page = soup(browser(t["member"]).get("/settings"))
    assert text(page.select_one("#org-plan")) == "Starter"
    assert "1/5 postmortems used in 2026-11" in text(page.select_one("#usage"))
    assert "resets on 2026-12-01" in text(page.select_one("#usage"))
    members = {text(tr.select("td")[1]): text(tr.select("td")[2]) for tr in page.select("tr.member-row")}
    assert members == {m.email: role for role, m in t.items()}
    assert page.select_one("form[action='/settings/ai']") is None
    assert text(page.select_one("#ai-state")).startswith("AI features are on.")


def test_settings_ai_toggle_by_owner_and_refused_for_admin(browser, team, rt, clock):
    t = team()
    owner = browser(t["owner"])
    form = soup(owner.get("/settings")).select_one("form[action='/settings/ai']")
    assert text(form.select_one("button")) == "Turn AI features off"
    r = post(owner, "/settings/ai", {"ai_enabled": form.select_one("input[name=ai_enabled]")["value"], "confirm": "yes"},
             follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings"
    page = soup(owner.get("/settings"))
    assert text(page.select_one("#ai-state")).startswith("AI features are off.")
    assert text(page.select_one("form[action='/settings/ai'] button")) == "Turn AI features on"
    with db.transaction(rt.factory) as s:
        assert orgs.get_org(session=s, org_id=t["owner"].actor.org_id).ai_enabled is False

    admin = browser(t["admin"])
    page = soup(admin.get("/settings"))
    assert page.select_one("form[action='/settings/ai']") is None
    assert text(page.select_one("#ai-heading + p + p")) == "Only the owner can change this."
    r = post(admin, "/settings/ai", {"ai_enabled": "true"})
    assert r.status_code == 403
    assert "owner" in text(soup(r).select_one("main"))
    with db.transaction(rt.factory) as s:
        assert orgs.get_org(session=s, org_id=t["owner"].actor.org_id).ai_enabled is False


# --- isolation, escaping, headers -----------------------------------------------------------------

def test_foreign_organization_incident_is_404(browser, team, rt, clock):
    ours, theirs = team(), team()
    foreign = drafted_incident(rt, clock, theirs["owner"])
    c = browser(ours["owner"])
    for url in (f"/incidents/{foreign}", f"/incidents/{foreign}/postmortem/card",
                f"/incidents/{foreign}/postmortem/edit", f"/incidents/{foreign}/postmortem/original",
                f"/incidents/{foreign}/postmortem/revisions", f"/incidents/{foreign}/postmortem/export.md"):
        r = c.get(url)
        assert r.status_code == 404, url
    r = c.get(f"/incidents/{foreign}")
    assert text(soup(r).select_one("h1")) == "Not found"
    for url in (f"/incidents/{foreign}/resolve", f"/incidents/{foreign}/updates",
                f"/incidents/{foreign}/postmortem/publish", f"/incidents/{foreign}/postmortem/regenerate"):
        assert post(c, url, {"body": "x"}).status_code == 404, url
    assert foreign not in [int(tr["data-id"]) for tr in soup(c.get("/incidents")).select("tr.incident-row")]


def test_incident_title_is_escaped(browser, team, rt, clock):
    t = team()
    title = "<script>alert(1)</script>"
    c = browser(t["owner"])
    r = post(c, "/incidents", {"title": title, "services": "<img src=x onerror=alert(1)>",
                               "description": "<b>bold</b>"}, follow_redirects=False)
    incident_id = int(r.headers["location"].rsplit("/", 1)[1])
    resolve(rt, t["owner"], incident_id)
    for url in ("/incidents", f"/incidents/{incident_id}", f"/incidents/{incident_id}/postmortem/card",
                f"/incidents/{incident_id}/postmortem/edit", f"/incidents/{incident_id}/postmortem/original"):
        r = c.get(url)
        assert r.status_code == 200, url
        assert "<script>alert(1)</script>" not in r.text and "<img src=x" not in r.text, url
        assert all(s.get("src", "").startswith("/static/") for s in soup(r).select("script")), url
    page = soup(c.get(f"/incidents/{incident_id}"))
    assert text(page.select_one("h1#incident-title")) == title
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in c.get(f"/incidents/{incident_id}").text


def test_pages_send_security_headers_and_load_only_local_assets(browser, team):
    t = team()
    c = browser(t["owner"])
    for url in ("/login", "/incidents", "/settings"):
        r = c.get(url)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        page = soup(r)
        assert page.select("[style]") == [] and page.select("style") == []
        assert all(not s.string for s in page.select("script"))  # no inline scripts
        refs = [s["src"] for s in page.select("script")] + [l["href"] for l in page.select("link[rel=stylesheet]")]
        assert refs == ["/static/vendor/htmx-2.0.11.min.js", "/static/app.js", "/static/restore.js", "/static/app.css"]
        config = page.select_one("meta[name=htmx-config]")["content"]
        assert '"includeIndicatorStyles": false' in config
    for asset in ("/static/vendor/htmx-2.0.11.min.js", "/static/app.js", "/static/restore.js", "/static/app.css"):
        assert c.get(asset).status_code == 200, asset



def test_history_lists_runs_and_shows_the_audit_to_admins_only(browser, team, rt):
    """Admins see what the model saw; members see the runs without the prompt."""
    t = team()
    owner_c = browser()
    assert login(owner_c, t["owner"].email).status_code == 303
    iid = owner_c.post("/api/v1/incidents", json={"title": "Audit me", "services": ["api"]},
                       headers=t["owner"].headers).json()["id"]
    owner_c.post(f"/api/v1/incidents/{iid}/resolve", headers=t["owner"].headers)
    with db.transaction(rt.factory) as s:
        run = s.query(GenerationRun).one()
        run.prompt = {"system": "SYSTEM-PROMPT-TEXT", "user": "<evidence>USER-PROMPT-TEXT</evidence>"}
        run.response_raw = '{"summary": "RAW-RESPONSE"}'
    member_c = browser()
    assert login(member_c, t["member"].email).status_code == 303
    for c, sees in ((owner_c, True), (member_c, False)):
        html = c.get(f"/incidents/{iid}/postmortem/revisions").text
        assert len(BeautifulSoup(html, 'html.parser').select("tr.run-row")) == 1
        assert ("USER-PROMPT-TEXT" in html) is sees and ("RAW-RESPONSE" in html) is sees
        assert "<evidence>USER" not in html  # escaped, never raw
