"""The role table over every route, generated from the app's route list: each route answers each caller as
permissions.ALLOWED says for the Action the route table declares.

Callers, weakest first: nobody (no token / no session), a revoked token or a logged-out session, then viewer,
member, admin and owner. Nobody and the revoked get 401 on the API and a redirect to the login page on pages;
a role without the Action gets 403 and changes nothing; a role with it succeeds (2xx, or a page's 303).
Page posts carry a valid CSRF token, so only the role decides.
"""

from __future__ import annotations

import pytest

from tests.security.routes_support import (
    PUBLIC,
    RECEIVER,
    ROLES,
    VENDOR,
    allowed,
    check_table_covers,
    spec_of,
    table_routes,
    world,  # noqa: F401 — the module-scoped fixture
)

CALLERS = ("anonymous", "revoked", *reversed(ROLES))  # weakest first: refusals come before the first success
ROLE_ROUTES = [r for r in table_routes() if spec_of(r).action not in (PUBLIC, RECEIVER, VENDOR)]


def test_the_route_table_covers_exactly_the_routes_the_app_serves(world):
    check_table_covers(world.app)


def expected(route, who: str) -> str:
    if who in ("anonymous", "revoked"):
        return "login"
    return "ok" if allowed(who, spec_of(route).action) else "forbidden"


def outcome(route, r) -> str:
    """Name what the answer is: login (401 / redirect to the login page / the login page), forbidden (403), ok (success), or other."""
    location = r.headers.get("location", "")
    if route.kind == "api" and r.status_code == 401 and r.json()["type"] == "/problems/unauthenticated":
        return "login"
    if route.kind == "page" and r.status_code == 303 and location.startswith("/login"):
        return "login"
    if route.kind == "page" and r.status_code == 401 and 'action="/login"' in r.text:
        return "login"  # a form POST refused for want of a session: the login page, keeping what was typed
    if r.status_code == 403:
        return "forbidden"
    if 200 <= r.status_code < 400:
        return "ok"
    return f"status {r.status_code}"


def unchanged(world, before: dict) -> list[str]:
    if world.snapshot() == before:
        return []
    world.forget()  # why: the shared records may be gone or altered; later tests must not inherit that
    return ["refused calls changed rows"]


@pytest.mark.parametrize("route", ROLE_ROUTES, ids=str)
def test_each_caller_gets_what_the_role_table_says(world, route):
    spec = spec_of(route)
    ids = world.fill(route, world.a, fresh=route.method != "GET")
    wrong, before = [], None
    for i, who in enumerate(CALLERS):
        want = expected(route, who)
        body = world.body(route, world.a, ids)
        if route.method != "GET" and i == 0:
            before = world.snapshot()  # callers go weakest first, so one snapshot covers every refusal
        if want == "ok" and before is not None:
            wrong += unchanged(world, before)
            before = None
        r = world.call(route, who, world.a, ids, body)
        got = outcome(route, r)
        if got != want:
            wrong.append(f"{who}: expected {want}, got {got}: {r.text[:300]}")
        if got == "ok" and spec.consumes:
            ids = world.fill(route, world.a, fresh=True)
    if before is not None:
        wrong += unchanged(world, before)
    assert not wrong, f"{route} (needs {spec.action}):\n" + "\n".join(wrong)


PAGE_POSTS = [r for r in table_routes() if r.kind == "page" and r.method == "POST"]


@pytest.mark.parametrize("route", PAGE_POSTS, ids=str)
def test_every_page_post_needs_this_browsers_csrf_token(world, route):
    """Missing, made-up or another browser's (validly signed) token: 403 before the handler runs, nothing changed."""
    ids = world.fill(route, world.a)
    body = world.body(route, world.a, ids) or {}
    owner = world.a.browsers["owner"]
    foreign = world.anonymous.cookies["csrftoken"]
    assert foreign != owner.cookies["csrftoken"]
    before = world.snapshot()
    for token in (None, "forged", foreign):
        data = body | ({"csrftoken": token} if token else {})
        r = owner.post(route.url(ids), data=data, follow_redirects=False)
        assert r.status_code == 403, f"{route} with csrftoken={token!r}: {r.status_code} {r.text[:200]}"
        r = owner.post(route.url(ids), data=body, headers={"x-csrftoken": token or ""}, follow_redirects=False)
        assert r.status_code == 403, f"{route} with x-csrftoken={token!r}: {r.status_code} {r.text[:200]}"
    assert world.snapshot() == before
