"""Application-level behaviour: health, OpenAPI and docs without external assets, security headers."""

import re

CONTRACT = [  # API.md
    ("post", "/api/v1/incidents"), ("get", "/api/v1/incidents"), ("get", "/api/v1/incidents/{incident_id}"),
    ("post", "/api/v1/incidents/{incident_id}/updates"), ("post", "/api/v1/incidents/{incident_id}/resolve"),
    ("get", "/api/v1/incidents/{incident_id}/timeline"), ("post", "/api/v1/deploys"),
    ("get", "/api/v1/incidents/{incident_id}/postmortem"), ("post", "/api/v1/incidents/{incident_id}/postmortem"),
    ("post", "/api/v1/incidents/{incident_id}/postmortem/regenerate"),
    ("patch", "/api/v1/incidents/{incident_id}/postmortem"),
    ("post", "/api/v1/incidents/{incident_id}/postmortem/publish"),
    ("get", "/api/v1/incidents/{incident_id}/postmortem/original"),
    ("get", "/api/v1/incidents/{incident_id}/postmortem/revisions"),
    ("get", "/api/v1/incidents/{incident_id}/postmortem/export.md"),
    ("get", "/api/v1/org/settings"), ("patch", "/api/v1/org/settings"), ("get", "/api/v1/org/usage"),
]


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_openapi_lists_every_contract_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    missing = [(m, p) for m, p in CONTRACT if m not in paths.get(p, {})]
    assert missing == []


def test_docs_page_uses_only_local_assets(client):
    r = client.get("/docs")
    assert r.status_code == 200
    for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_csrf_free_paths_skip_the_csrf_layer_and_pages_keep_it(client):
    # why: the CSRF layer minted and signed a token for every API call and webhook delivery that nothing read
    assert "csrftoken" not in client.get("/api/v1/incidents").cookies
    assert "csrftoken" not in client.post("/webhooks/alertmanager/nope", content=b"{}").cookies
    assert client.get("/login").cookies.get("csrftoken")
    assert client.post("/login", data={"email": "a@b.test", "password": "x"}).status_code == 403  # no token: refused


def test_security_headers_on_api_responses(client):
    r = client.get("/api/v1/incidents")
    assert r.status_code == 401
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_unknown_route_is_problem_json(client):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
