"""Authentication hardening: CSRF, session fixation, cookie flags, logout, expiry, token revocation, removed members
and role changes taking effect on the very next request.

(Every page POST route refusing a missing or foreign CSRF token is checked, generated from the route list, in
tests/security/test_route_roles.py, which already holds logged-in browsers for every route.)
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from blametrail import db
from blametrail.incidents.models import Incident
from blametrail.orgs.models import LoginSession
from blametrail.settings import Settings
from tests.security.routes_support import HTML, PASSWORD, SESSION_COOKIE

API = "/api/v1"
JAR_DOMAIN = "testserver.local"  # httpx's cookie jar stores cookies of the dotless host "testserver" under this


# --- helpers ------------------------------------------------------------------------------------------------------


def person(rt, factory, slug: str, role: str):
    """A member with an API token and a password (hashed at the suite's cheap argon2 cost, tests/conftest.py)."""
    return factory.member(slug, role, password=PASSWORD)


@pytest.fixture
def team(rt, factory):
    slug = factory.org(plan="pro")
    return {role: person(rt, factory, slug, role) for role in ("owner", "admin", "member", "viewer")}


@pytest.fixture
def browser(app):
    """Open browsers, each with its own cookie jar; `browser(member)` is logged in as that member."""
    opened = []

    def open_browser(member=None, **kwargs) -> TestClient:
        c = TestClient(app, headers=HTML, **kwargs)
        opened.append(c)
        if member is not None:
            r = login(c, member.email)
            assert r.status_code == 303 and r.headers["location"] == "/incidents", r.text
        return c

    yield open_browser
    for c in opened:
        c.close()


def token_of(c: TestClient) -> str:
    if not c.cookies.get("csrftoken"):
        assert c.get("/login").status_code == 200
    return c.cookies["csrftoken"]


def login(c: TestClient, email: str, password: str = PASSWORD):
    return c.post("/login", data={"email": email, "password": password, "csrftoken": token_of(c)},
                  follow_redirects=False)


def form(c: TestClient, url: str, data: dict | None = None, **kwargs):
    """Post a form the way the pages do: with this browser's CSRF token."""
    return c.post(url, data={**(data or {}), "csrftoken": token_of(c)}, follow_redirects=False, **kwargs)


def logged_in_as(c: TestClient) -> str | None:
    """The email the browser is logged in as (from the page header), or None when pages send it to the login page."""
    r = c.get("/incidents", follow_redirects=False)
    if r.status_code == 303:
        assert r.headers["location"].startswith("/login")
        return None
    assert r.status_code == 200, r.text
    return BeautifulSoup(r.text, "html.parser").select_one(".user-box .user-name").get_text(strip=True)


def role_badge(c: TestClient) -> str:
    page = BeautifulSoup(c.get("/incidents").text, "html.parser")
    return page.select_one(".user-box .role-badge").get_text(strip=True)


def with_cookie(browser, cookie: str) -> TestClient:
    c = browser()
    c.cookies.set(SESSION_COOKIE, cookie, domain=JAR_DOMAIN)  # where the jar files the server's own cookies
    return c


def count(rt, model) -> int:
    with db.transaction(rt.factory) as s:
        return s.scalar(select(func.count()).select_from(model))


def cookie_attrs(response, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie header for `name` (lower-case keys; flags map to "")."""
    for header in response.headers.get_list("set-cookie"):
        parts = [p.strip() for p in header.split(";")]
        if parts[0].startswith(f"{name}="):
            return {p.partition("=")[0].lower(): p.partition("=")[2] for p in parts[1:]}
    raise AssertionError(f"no {name} cookie set in {response.headers.get_list('set-cookie')}")


# --- CSRF ---------------------------------------------------------------------------------------------------------


def test_the_login_form_needs_its_csrf_token(browser, team):
    owner = team["owner"]
    bare = browser()  # no cookie at all: /login is protected even then
    assert bare.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 403
    c = browser()
    token_of(c)
    for token in (None, "forged", token_of(browser())):  # missing, made up, another browser's valid token
        data = {"email": owner.email, "password": PASSWORD} | ({"csrftoken": token} if token else {})
        r = c.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 403, token
        assert SESSION_COOKIE not in c.cookies
    assert logged_in_as(c) is None


def test_a_page_form_needs_this_browsers_own_csrf_token(browser, team, rt):
    c = browser(team["owner"])
    other = token_of(browser())  # validly signed, but another browser's
    attempts = [
        {"data": {"title": "no token"}},
        {"data": {"title": "made up", "csrftoken": "forged"}},
        {"data": {"title": "foreign", "csrftoken": other}},
        {"data": {"title": "foreign header"}, "headers": {"x-csrftoken": other}},
    ]
    for attempt in attempts:
        r = c.post("/incidents", follow_redirects=False, **attempt)
        assert r.status_code == 403, attempt
    assert count(rt, Incident) == 0
    assert form(c, "/incidents", {"title": "with the token"}).status_code == 303  # the control
    assert count(rt, Incident) == 1
    r = c.post("/incidents", data={"title": "via htmx"}, headers={"x-csrftoken": token_of(c), "HX-Request": "true"},
               follow_redirects=False)
    assert r.status_code == 303 and count(rt, Incident) == 2


def test_the_api_never_accepts_the_session_cookie(browser, team, rt):
    """The API is exempt from CSRF checks, so a browser's cookie must not authenticate it."""
    c = browser(team["owner"])
    assert c.post(f"{API}/incidents", json={"title": "cookie only"}).status_code == 401
    assert c.get(f"{API}/incidents").status_code == 401
    assert c.post(f"{API}/org/tokens", json={"name": "stolen"}).status_code == 401
    assert count(rt, Incident) == 0


def test_a_bearer_header_does_not_lift_csrf_on_pages(browser, team, rt):
    c = browser(team["owner"])
    r = c.post("/incidents", data={"title": "bearer"}, headers={"Authorization": "Bearer anything"},
               follow_redirects=False)
    assert r.status_code == 403
    assert count(rt, Incident) == 0


MALFORMED = [
    ("multipart/form-data;boundary=xyz", b"--xyz--\r\n"),  # valid per RFC 7578: no space before boundary
    ("multipart/form-data", b""),  # no boundary at all
    ("application/x-www-form-urlencoded", b"title=\xff"),  # not UTF-8
]


def test_a_malformed_form_post_is_refused_not_a_server_error(browser, team, rt):
    c = browser(team["owner"], raise_server_exceptions=False)
    answers = [c.post("/incidents", content=body, headers={"content-type": content_type},
                      follow_redirects=False).status_code for content_type, body in MALFORMED]
    assert count(rt, Incident) == 0
    assert all(400 <= status < 500 for status in answers), answers


# --- session fixation -------------------------------------------------------------------------------------------


def test_a_pre_login_cookie_never_becomes_a_logged_in_one(browser, team):
    c = browser()
    form(c, "/logout")  # an anonymous visit that leaves a session cookie (the flash message)
    before = c.cookies.get(SESSION_COOKIE)
    assert before
    assert login(c, team["member"].email).status_code == 303
    after = c.cookies.get(SESSION_COOKIE)
    assert after and after != before
    assert logged_in_as(c) == team["member"].email
    assert logged_in_as(with_cookie(browser, before)) is None


def test_a_planted_session_is_replaced_and_ended_when_the_victim_logs_in(browser, team, rt, factory):
    attacker = person(rt, factory, factory.org(), "owner")
    planted = browser(attacker).cookies[SESSION_COOKIE]
    victim = with_cookie(browser, planted)  # the attacker got their own session cookie into the victim's browser
    assert logged_in_as(victim) == attacker.email
    assert login(victim, team["admin"].email).status_code == 303
    assert victim.cookies[SESSION_COOKIE] != planted
    assert logged_in_as(victim) == team["admin"].email
    assert logged_in_as(with_cookie(browser, planted)) is None  # the planted session no longer exists
    assert count(rt, LoginSession) == 1


# --- cookie flags -----------------------------------------------------------------------------------------------


def test_session_and_csrf_cookie_flags(browser, team, settings):
    c = browser()
    page = c.get("/login")
    csrf = cookie_attrs(page, "csrftoken")
    assert csrf["samesite"].lower() == "lax" and csrf["path"] == "/"
    assert "secure" not in csrf  # plain HTTP by default (BLAMETRAIL_COOKIE_SECURE=false)
    # why no HttpOnly on csrftoken: asgi-csrf offers no such flag; the token is double-submitted (form field or
    # header) and is worthless without the page's own origin, so reading it gives an attacker nothing
    session = cookie_attrs(login(c, team["owner"].email), SESSION_COOKIE)
    assert "httponly" in session and session["samesite"].lower() == "lax" and session["path"] == "/"
    assert session["max-age"] == str(settings.session_max_age_seconds)
    assert "secure" not in session


def test_cookies_are_secure_when_cookie_secure_is_set(monkeypatch, settings, rt, team):
    from blametrail.app import create_app

    monkeypatch.setenv("BLAMETRAIL_COOKIE_SECURE", "true")
    secure = Settings(data_dir=settings.data_dir, database_url=settings.database_url, dev_mode=True,
                      embedded_workers=0, _env_file=None)
    assert secure.cookie_secure is True
    with TestClient(create_app(secure, runtime=rt, background=False), base_url="https://testserver",
                    headers=HTML) as c:
        page = c.get("/login")
        assert "secure" in cookie_attrs(page, "csrftoken")
        r = login(c, team["owner"].email)
        assert r.status_code == 303
        session = cookie_attrs(r, SESSION_COOKIE)
        assert "secure" in session and "httponly" in session and session["samesite"].lower() == "lax"
        assert logged_in_as(c) == team["owner"].email


# --- ending sessions ----------------------------------------------------------------------------------------------


def test_logout_ends_the_session_on_the_server(browser, team, rt):
    c = browser(team["viewer"])
    cookie = c.cookies[SESSION_COOKIE]
    r = form(c, "/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert count(rt, LoginSession) == 0
    replay = with_cookie(browser, cookie)
    assert logged_in_as(replay) is None
    refused = form(replay, "/settings/tokens", {"name": "after logout"})  # the login page, keeping the text
    assert refused.status_code == 401 and 'action="/login"' in refused.text


def test_a_session_ends_when_its_lifetime_is_over(browser, team, clock, settings):
    c = browser(team["member"])
    clock.advance(seconds=settings.session_max_age_seconds - 1)
    assert logged_in_as(c) == team["member"].email
    clock.advance(seconds=2)
    assert logged_in_as(c) is None


def test_a_revoked_token_stops_working_on_the_next_request(client, browser, team):
    member, owner = team["member"], team["owner"]
    raws = [member.token] + [client.post(f"{API}/org/tokens", headers=member.headers, json={"name": f"t{i}"}).json()
                             ["token"] for i in (1, 2)]
    ids = [t["id"] for t in sorted(client.get(f"{API}/org/tokens", headers=member.headers).json(),
                                   key=lambda t: t["id"])]
    revocations = [  # by the token itself, by an owner, and on the member's tokens page
        lambda: client.delete(f"{API}/org/tokens/{ids[0]}", headers={"Authorization": f"Bearer {raws[0]}"}),
        lambda: client.delete(f"{API}/org/tokens/{ids[1]}", headers=owner.headers),
        lambda: form(browser(member), f"/settings/tokens/{ids[2]}/revoke"),
    ]
    for n, revoke in enumerate(revocations):
        assert revoke().status_code in (200, 303)
        for i, raw in enumerate(raws):
            r = client.get(f"{API}/incidents", headers={"Authorization": f"Bearer {raw}"})
            assert r.status_code == (401 if i <= n else 200), (n, i, r.text)
        r = client.post(f"{API}/org/tokens", headers={"Authorization": f"Bearer {raws[n]}"})
        assert r.status_code == 401 and r.json()["type"] == "/problems/unauthenticated"
    assert client.get(f"{API}/incidents", headers=owner.headers).status_code == 200  # only those tokens


@pytest.mark.parametrize("via", ["api", "page"])
def test_a_removed_member_loses_sessions_and_tokens_at_once(client, browser, team, rt, via):
    member, owner = team["member"], team["owner"]
    theirs = browser(member)
    assert client.get(f"{API}/incidents", headers=member.headers).status_code == 200
    if via == "api":
        r = client.delete(f"{API}/org/members/{member.actor.user_id}", headers=owner.headers)
        assert r.status_code == 204, r.text
    else:
        r = form(browser(owner), f"/settings/members/{member.actor.user_id}/remove", {"confirm": "yes"})
        assert r.status_code == 303, r.text
    assert client.get(f"{API}/incidents", headers=member.headers).status_code == 401
    assert logged_in_as(theirs) is None
    refused = form(theirs, "/incidents", {"title": "after removal"})  # the login page, keeping the text
    assert refused.status_code == 401 and 'action="/login"' in refused.text
    assert count(rt, Incident) == 0
    # invited again, they start afresh: the old token and the old session stay dead
    r = client.post(f"{API}/org/members", headers=owner.headers, json={"email": member.email, "role": "member"})
    assert r.status_code == 201, r.text
    assert client.get(f"{API}/incidents", headers=member.headers).status_code == 401
    assert logged_in_as(theirs) is None


@pytest.mark.parametrize("via", ["api", "page"])
def test_a_role_change_takes_effect_on_the_next_request(client, browser, team, via):
    admin, owner = team["admin"], team["owner"]
    theirs = browser(admin)
    hook = {"kind": "alertmanager", "name": "before"}
    assert client.get(f"{API}/org/ai", headers=admin.headers).status_code == 200
    assert form(theirs, "/settings/webhooks", hook).status_code == 200

    def set_role(role: str) -> None:
        if via == "api":
            r = client.patch(f"{API}/org/members/{admin.actor.user_id}", headers=owner.headers, json={"role": role})
            assert r.status_code == 200, r.text
        else:
            r = form(browser(owner), f"/settings/members/{admin.actor.user_id}/role", {"role": role})
            assert r.status_code == 303, r.text

    set_role("viewer")
    assert client.get(f"{API}/org/ai", headers=admin.headers).status_code == 403
    assert client.post(f"{API}/webhooks", headers=admin.headers, json=hook).status_code == 403
    assert form(theirs, "/settings/webhooks", hook).status_code == 403
    assert role_badge(theirs) == "viewer"
    assert client.post(f"{API}/incidents", headers=admin.headers, json={"title": "x"}).status_code == 403
    set_role("admin")  # and back: the upgrade is just as immediate
    assert client.get(f"{API}/org/ai", headers=admin.headers).status_code == 200
    assert form(theirs, "/settings/webhooks", hook).status_code == 200
    assert role_badge(theirs) == "admin"
