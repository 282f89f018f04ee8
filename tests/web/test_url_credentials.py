"""Credentials written into a URL (issue 11, F6): refused where they would be stored, never shown where stored."""

from __future__ import annotations

import pytest
from sqlalchemy import text as sql

from blametrail import db
from tests.web.test_hostile_input import rows
from tests.web.test_pages import PASSWORD, browser, post, soup, text  # noqa: F401 — fixture

PASSWORD_IN_URL = "hunter2-in-the-url"


def with_userinfo(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://ops:{PASSWORD_IN_URL}@{rest}"


MONITOR = {"name": "Status", "url": "https://status.internal/health"}
CONNECTIONS = {
    "prometheus": {"name": "prom", "provider": "prometheus", "endpoint": "http://prometheus.internal:9090"},
    "loki": {"name": "loki", "provider": "loki", "endpoint": "http://loki.internal:3100"},
    "datadog": {"name": "dd", "provider": "datadog", "endpoint": "https://datadog-proxy.internal"},
    "cloudwatch": {"name": "cw", "provider": "cloudwatch", "endpoint": "eu-west-1",
                   "options": {"endpoint_url": "http://localstack.internal:4566"}},
}


def _with_credentials(body: dict) -> dict:
    if "endpoint_url" in body.get("options", {}):
        return {**body, "options": {"endpoint_url": with_userinfo(body["options"]["endpoint_url"])}}
    return {**body, "endpoint": with_userinfo(body["endpoint"])}


@pytest.fixture
def admin(factory):
    return factory.member(factory.org(), "admin", password=PASSWORD)


def _refused(r, rt, before, *words: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert PASSWORD_IN_URL not in r.text and all(w in detail for w in words), detail
    assert rows(rt) == before


# --- refused on the API and the page forms ----------------------------------------------------------------------

def test_api_refuses_a_monitor_url_with_credentials(client, rt, admin):
    before = rows(rt)
    r = client.post("/api/v1/monitors", json={**MONITOR, "url": with_userinfo(MONITOR["url"])}, headers=admin.headers)
    _refused(r, rt, before, "credentials", "plain text", "Monitors send no credentials")
    made = client.post("/api/v1/monitors", json=MONITOR, headers=admin.headers)
    assert made.status_code == 201, made.text
    before = rows(rt)
    r = client.patch(f"/api/v1/monitors/{made.json()['id']}", json={"url": with_userinfo(MONITOR["url"])},
                     headers=admin.headers)
    _refused(r, rt, before, "credentials")
    assert client.get(f"/api/v1/monitors/{made.json()['id']}", headers=admin.headers).json()["url"] == MONITOR["url"]


@pytest.mark.parametrize("provider", CONNECTIONS)
def test_api_refuses_a_connection_endpoint_with_credentials(client, rt, admin, provider):
    body = CONNECTIONS[provider]
    before = rows(rt)
    r = client.post("/api/v1/connections", json=_with_credentials(body), headers=admin.headers)
    _refused(r, rt, before, "credentials", "stored encrypted")
    made = client.post("/api/v1/connections", json=body, headers=admin.headers)
    assert made.status_code == 201, made.text
    before = rows(rt)
    change = {k: v for k, v in _with_credentials(body).items() if k in ("endpoint", "options")}
    r = client.patch(f"/api/v1/connections/{made.json()['id']}", json=change, headers=admin.headers)
    _refused(r, rt, before, "credentials")


def test_the_ai_base_url_refuses_credentials(client, rt, factory):
    owner = factory.member(factory.org(), "owner")
    before = rows(rt)
    r = client.put("/api/v1/org/ai", json={"engine": "openai", "model": "gpt-test",
                                           "base_url": with_userinfo("https://llm.internal/v1")}, headers=owner.headers)
    _refused(r, rt, before)


def test_page_forms_refuse_credentials_and_say_where_they_go(browser, rt, admin):
    c = browser(admin)
    before = rows(rt)
    r = post(c, "/settings/monitors", {**MONITOR, "url": with_userinfo(MONITOR["url"])})
    assert r.status_code == 422 and "Monitors send no credentials" in text(soup(r).select_one("main"))
    r = post(c, "/settings/connections", {**CONNECTIONS["prometheus"],
                                          "endpoint": with_userinfo(CONNECTIONS["prometheus"]["endpoint"])})
    assert r.status_code == 422 and "stored encrypted" in text(soup(r).select_one("main"))
    assert rows(rt) == before


# --- rows stored before the refusal never show their credentials -------------------------------------------------

def test_stored_credentials_never_show_to_anyone(client, browser, rt, factory, admin):
    t = {"admin": admin, "viewer": factory.member(admin.org_slug, "viewer", password=PASSWORD)}
    monitor = client.post("/api/v1/monitors", json=MONITOR, headers=t["admin"].headers).json()["id"]
    connection = client.post("/api/v1/connections", json=CONNECTIONS["prometheus"],
                             headers=t["admin"].headers).json()["id"]
    cloudwatch = client.post("/api/v1/connections", json=CONNECTIONS["cloudwatch"],
                             headers=t["admin"].headers).json()["id"]
    with db.transaction(rt.factory) as s:  # as an older version stored them
        s.execute(sql("UPDATE monitor SET url = :u"), {"u": with_userinfo(MONITOR["url"])})
        s.execute(sql("UPDATE connection SET endpoint = :u WHERE id = :id"),
                  {"u": with_userinfo(CONNECTIONS["prometheus"]["endpoint"]), "id": connection})
        s.execute(sql("UPDATE connection SET options = :o WHERE id = :id"),
                  {"o": '{"endpoint_url": "%s"}' % with_userinfo("http://localstack.internal:4566"), "id": cloudwatch})
    for role in ("viewer", "admin"):
        for url in ("/api/v1/monitors", f"/api/v1/monitors/{monitor}", "/api/v1/connections",
                    f"/api/v1/connections/{connection}", f"/api/v1/connections/{cloudwatch}"):
            r = client.get(url, headers=t[role].headers)
            assert r.status_code == 200 and PASSWORD_IN_URL not in r.text, (role, url)
        assert client.get(f"/api/v1/monitors/{monitor}", headers=t[role].headers).json()["url"] == \
            "https://***@status.internal/health"
        c = browser(t[role])
        for url in ("/settings/monitors", f"/settings/monitors/{monitor}", "/settings/connections",
                    f"/settings/connections/{connection}"):
            r = c.get(url)
            assert r.status_code == 200 and PASSWORD_IN_URL not in r.text, (role, url)
