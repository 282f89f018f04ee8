"""An internal service's error body never reaches a stored or shown connection error (issue 11, F7)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text as sql

from blametrail import db
from tests.web.test_pages import PASSWORD, browser  # noqa: F401 — fixture

SECRET = "DATABASE_URL=postgres://app:s3cr3t-db-pass@db.internal/app"
BODIES = {
    "html page": ("text/html", f"<h1>Internal error</h1><pre>Traceback (most recent call last):\n  {SECRET}</pre>"),
    "json error": ("application/json", json.dumps({"error": f"config dump: {SECRET}"})),
    "plain text": ("text/plain", f"panic: {SECRET}\ngoroutine 1 [running]"),
}
PATHS = {"prometheus": "/api/v1/status/buildinfo", "loki": "/loki/api/v1/labels"}


@pytest.fixture
def people(factory):
    slug = factory.org()
    return {role: factory.member(slug, role) for role in ("admin", "viewer")}


def _connect(client, admin, provider: str, endpoint: str) -> int:
    r = client.post("/api/v1/connections", json={"name": provider, "provider": provider, "endpoint": endpoint},
                    headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _stored_error(rt, cid: int) -> str:
    with db.transaction(rt.factory) as s:
        return s.execute(sql("SELECT last_test_error FROM connection WHERE id = :id"), {"id": cid}).scalar_one()


CASES = {f"{provider}-{kind}": (provider, kind) for provider in PATHS for kind in BODIES
         if provider == "prometheus" or kind == "html page"}


def _fail_with(httpserver, provider: str, kind: str) -> None:
    content_type, data = BODIES[kind]
    httpserver.expect_request(PATHS[provider]).respond_with_data(data, status=500, content_type=content_type)


@pytest.mark.parametrize("provider,kind", CASES.values(), ids=CASES.keys())
def test_a_500_body_is_kept_out_of_the_stored_and_shown_error(client, rt, httpserver, people, provider, kind):
    _fail_with(httpserver, provider, kind)
    cid = _connect(client, people["admin"], provider, httpserver.url_for("/").rstrip("/"))
    r = client.post(f"/api/v1/connections/{cid}/test", headers=people["admin"].headers)
    assert r.status_code == 200 and r.json()["ok"] is False
    assert r.json()["error"].endswith("failed with HTTP 500: Internal Server Error"), r.json()
    assert "s3cr3t" not in _stored_error(rt, cid)
    for role in ("admin", "viewer"):
        shown = client.get(f"/api/v1/connections/{cid}", headers=people[role].headers)
        assert shown.status_code == 200 and "s3cr3t" not in shown.text
    viewer = client.get(f"/api/v1/connections/{cid}", headers=people["viewer"].headers).json()
    assert viewer["last_test_error"] == ("The backend answered an error (HTTP 500 Internal Server Error); an owner or "
                                         "admin can see the details.")


def test_pages_show_viewers_the_status_only(client, browser, factory, httpserver):
    slug = factory.org()
    admin, viewer = (factory.member(slug, role, password=PASSWORD) for role in ("admin", "viewer"))
    _fail_with(httpserver, "prometheus", "html page")
    cid = _connect(client, admin, "prometheus", httpserver.url_for("/").rstrip("/"))
    client.post(f"/api/v1/connections/{cid}/test", headers=admin.headers)
    for member, shown in ((admin, "failed with HTTP 500: Internal Server Error"),
                          (viewer, "The backend answered an error (HTTP 500 Internal Server Error)")):
        c = browser(member)
        for url in ("/settings/connections", f"/settings/connections/{cid}"):
            page = c.get(url)
            assert page.status_code == 200 and "s3cr3t" not in page.text and shown in page.text, url


def test_a_rejected_query_keeps_its_short_reason_for_admins_only(client, rt, httpserver, people):
    httpserver.expect_request("/loki/api/v1/labels").respond_with_data(
        "parse error at line 1, col 7: syntax error (tenant acme-secret-tenant)\n", status=400,
        content_type="text/plain")
    cid = _connect(client, people["admin"], "loki", httpserver.url_for("/").rstrip("/"))
    client.post(f"/api/v1/connections/{cid}/test", headers=people["admin"].headers)
    admin = client.get(f"/api/v1/connections/{cid}", headers=people["admin"].headers).json()
    assert "rejected the query (400): parse error at line 1, col 7" in admin["last_test_error"]
    viewer = client.get(f"/api/v1/connections/{cid}", headers=people["viewer"].headers)
    assert "acme-secret-tenant" not in viewer.text
    assert viewer.json()["last_test_error"] == ("The backend rejected the query (HTTP 400 Bad Request); an owner or "
                                                "admin can see the details.")
