"""The connections API: roles, foreign ids, write-only credentials, and the test endpoint."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from blametrail import db
from tests.integrations.conftest import free_port

SECRET = "glsa_very-secret-prometheus-token"


@pytest.fixture
def team(factory):
    return factory.team()


def prom(endpoint: str = "http://prometheus.internal:9090", **extra) -> dict:
    return {"name": "prod-prometheus", "provider": "prometheus", "endpoint": endpoint,
            "credentials": {"token": SECRET},
            "signals": [{"name": "error_rate", "query": 'sum(rate(http_errors_total{service="$service"}[1m]))',
                         "services": ["*"], "unit": "req/s"}], **extra}


def test_admin_creates_and_credentials_never_come_back(client, team, rt):
    r = client.post("/api/v1/connections", json=prom(), headers=team["admin"].headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["has_credentials"] is True and body["credential_keys"] == ["token"]
    assert "credentials" not in body and SECRET not in r.text
    assert body["signals"][0] == {"name": "error_rate", "kind": "metric", "services": ["*"], "unit": "req/s",
                                  "query": 'sum(rate(http_errors_total{service="$service"}[1m]))'}
    cid = body["id"]
    for url in ("/api/v1/connections", f"/api/v1/connections/{cid}"):
        got = client.get(url, headers=team["viewer"].headers)
        assert got.status_code == 200 and SECRET not in got.text
    with db.transaction(rt.factory) as s:
        stored = s.execute(text("SELECT credentials_encrypted FROM connection WHERE id = :id"), {"id": cid}).scalar_one()
    assert SECRET not in stored and json.loads(rt.secret_box.decrypt(stored)) == {"token": SECRET}


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_write(client, team, role):
    r = client.post("/api/v1/connections", json=prom(), headers=team[role].headers)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    cid = client.post("/api/v1/connections", json=prom(), headers=team["owner"].headers).json()["id"]
    assert client.patch(f"/api/v1/connections/{cid}", json={"enabled": False},
                        headers=team[role].headers).status_code == 403
    assert client.delete(f"/api/v1/connections/{cid}", headers=team[role].headers).status_code == 403
    assert client.post(f"/api/v1/connections/{cid}/test", headers=team[role].headers).status_code == 403
    assert client.get(f"/api/v1/connections/{cid}", headers=team[role].headers).status_code == 200


def test_foreign_ids_answer_404(client, team, factory):
    cid = client.post("/api/v1/connections", json=prom(), headers=team["owner"].headers).json()["id"]
    stranger = factory.member(factory.org(), "owner").headers
    assert client.get(f"/api/v1/connections/{cid}", headers=stranger).status_code == 404
    assert client.patch(f"/api/v1/connections/{cid}", json={"enabled": False}, headers=stranger).status_code == 404
    assert client.post(f"/api/v1/connections/{cid}/test", headers=stranger).status_code == 404
    assert client.delete(f"/api/v1/connections/{cid}", headers=stranger).status_code == 404
    assert client.get("/api/v1/connections", headers=stranger).json() == []
    assert client.get(f"/api/v1/connections/{cid}", headers=team["owner"].headers).status_code == 200


def test_patch_and_delete(client, team):
    h = team["admin"].headers
    cid = client.post("/api/v1/connections", json=prom(), headers=h).json()["id"]
    r = client.patch(f"/api/v1/connections/{cid}", json={"name": "prom-eu", "enabled": False}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "prom-eu" and r.json()["has_credentials"] is True
    r = client.patch(f"/api/v1/connections/{cid}", json={"credentials": {"username": "u", "password": "p"}}, headers=h)
    assert r.json()["credential_keys"] == ["password", "username"]
    assert client.delete(f"/api/v1/connections/{cid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/connections/{cid}", headers=h).status_code == 404


def test_validation_and_conflict_are_problems(client, team):
    h = team["admin"].headers
    r = client.post("/api/v1/connections", json=prom(endpoint="ftp://x"), headers=h)
    assert r.status_code == 422 and "http:// or https://" in r.json()["detail"]
    r = client.post("/api/v1/connections", json={**prom(), "provider": "splunk"}, headers=h)
    assert r.status_code == 422
    assert client.post("/api/v1/connections", json=prom(), headers=h).status_code == 201
    r = client.post("/api/v1/connections", json=prom(), headers=h)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


def test_test_endpoint_answers_ok_and_stores_it(client, team, httpserver):
    httpserver.expect_request("/api/v1/status/buildinfo").respond_with_json(
        {"status": "success", "data": {"version": "2.42.0", "revision": "", "branch": "", "buildUser": "",
                                       "buildDate": "", "goVersion": "go1.19.8"}})
    httpserver.expect_request("/api/v1/query", headers={"Authorization": f"Bearer {SECRET}"}).respond_with_json(
        {"status": "success", "data": {"resultType": "scalar", "result": [1795687200, "1"]}})
    h = team["admin"].headers
    cid = client.post("/api/v1/connections", json=prom(httpserver.url_for("/").rstrip("/")), headers=h).json()["id"]
    r = client.post(f"/api/v1/connections/{cid}/test", headers=h)
    assert r.status_code == 200
    assert r.json() == {"ok": True, "message": f"Prometheus at {httpserver.url_for('/').rstrip('/')} answered "
                                               "(version 2.42.0); queries work"}
    shown = client.get(f"/api/v1/connections/{cid}", headers=h).json()
    assert shown["last_test_ok"] is True and shown["last_test_error"] is None and shown["last_test_at"]


def test_test_endpoint_answers_the_actionable_error(client, team, httpserver):
    h = team["admin"].headers
    url = f"http://127.0.0.1:{free_port()}"
    cid = client.post("/api/v1/connections", json=prom(url), headers=h).json()["id"]
    r = client.post(f"/api/v1/connections/{cid}/test", headers=h)
    assert r.status_code == 200
    assert r.json() == {"ok": False, "error": f"Prometheus at {url} could not be reached: connection refused"}
    shown = client.get(f"/api/v1/connections/{cid}", headers=h).json()
    assert shown["last_test_ok"] is False and "connection refused" in shown["last_test_error"]

    httpserver.expect_request("/api/v1/status/buildinfo").respond_with_json(
        {"status": "error", "errorType": "unauthorized", "error": "bad token"}, status=401)
    r = client.patch(f"/api/v1/connections/{cid}", json={"endpoint": httpserver.url_for("/")}, headers=h)
    assert r.json()["last_test_ok"] is None  # a new endpoint clears the old result
    r = client.post(f"/api/v1/connections/{cid}/test", headers=h)
    assert r.json()["ok"] is False and "rejected the credentials (401)" in r.json()["error"]


def test_openapi_lists_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/v1/connections"]) == {"get", "post"}
    assert set(paths["/api/v1/connections/{connection_id}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/v1/connections/{connection_id}/test"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ConnectionRead"]
    assert "credentials" not in schema["properties"]
