"""The monitor API: CRUD, validation, roles, organization scoping, recent checks."""

from __future__ import annotations

import pytest

from blametrail import db
from blametrail.monitors import service as monitors
from blametrail.monitors.checks import CheckOutcome
from tests.monitors import api_payload

URL = "https://shop.example.test/health"


@pytest.fixture
def team(factory):
    return factory.team()


def create(client, member, **overrides):
    return client.post("/api/v1/monitors", json=api_payload(**overrides), headers=member.headers)


def test_create_with_defaults(client, team, clock):
    r = create(client, team["admin"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "checkout" and body["url"] == URL and body["service"] == "checkout"
    assert (body["method"], body["interval_seconds"], body["timeout_seconds"]) == ("GET", 60, 10.0)
    assert (body["failure_threshold"], body["recovery_threshold"], body["severity"]) == (2, 2, "SEV-2")
    assert body["expected_statuses"] == [] and body["keyword"] is None and body["enabled"] is True
    assert body["state"] == "unknown" and body["incident_id"] is None
    assert body["next_check_at"].startswith("2026-11-26T10:00:00")  # the first check is due right away


def test_read_list_update_delete(client, team):
    mid = create(client, team["owner"], expected_statuses=[204, 200, 200], keyword="ok").json()["id"]
    viewer = team["viewer"]
    got = client.get(f"/api/v1/monitors/{mid}", headers=viewer.headers)
    assert got.status_code == 200 and got.json()["expected_statuses"] == [200, 204]
    assert [m["id"] for m in client.get("/api/v1/monitors", headers=viewer.headers).json()] == [mid]

    r = client.patch(f"/api/v1/monitors/{mid}", headers=team["admin"].headers,
                     json={"interval_seconds": 30, "keyword": None, "severity": "SEV-1", "method": "HEAD"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["interval_seconds"], body["keyword"], body["severity"], body["method"]) == (30, None, "SEV-1", "HEAD")
    assert body["name"] == "checkout"  # untouched fields stay

    assert client.delete(f"/api/v1/monitors/{mid}", headers=team["owner"].headers).status_code == 204
    assert client.get(f"/api/v1/monitors/{mid}", headers=viewer.headers).status_code == 404


@pytest.mark.parametrize("overrides", [
    {"interval_seconds": 5}, {"interval_seconds": 20, "timeout_seconds": 20}, {"timeout_seconds": 0.5},
    {"timeout_seconds": 61}, {"url": "ftp://shop.example.test/"}, {"url": "not a url"}, {"url": "http://"},
    {"expected_statuses": [700]}, {"expected_statuses": [99]}, {"method": "PUT"}, {"failure_threshold": 0},
    {"recovery_threshold": 21}, {"severity": "SEV-5"}, {"colour": "red"}, {"name": ""},
])
def test_invalid_monitors_are_422(client, team, overrides):
    r = create(client, team["owner"], **overrides)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "/problems/validation"


def test_interval_5_is_rejected_with_a_clear_message(client, team):
    r = create(client, team["owner"], interval_seconds=5)
    assert r.status_code == 422 and "interval_seconds" in r.json()["detail"]


def test_update_that_breaks_the_whole_is_422(client, team):
    mid = create(client, team["owner"], interval_seconds=30, timeout_seconds=10).json()["id"]
    r = client.patch(f"/api/v1/monitors/{mid}", json={"interval_seconds": 10}, headers=team["owner"].headers)
    assert r.status_code == 422 and r.json()["type"] == "/problems/validation"
    assert "timeout_seconds must be shorter" in r.text
    r = client.patch(f"/api/v1/monitors/{mid}", json={"interval_seconds": None}, headers=team["owner"].headers)
    assert r.status_code == 422


def test_duplicate_name_is_409(client, team):
    assert create(client, team["owner"]).status_code == 201
    r = create(client, team["admin"])
    assert r.status_code == 409 and r.json()["type"] == "/problems/conflict"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_member_and_viewer_cannot_manage_monitors(client, team, role):
    r = create(client, team[role])
    assert r.status_code == 403 and r.json()["type"] == "/problems/forbidden"
    mid = create(client, team["owner"]).json()["id"]
    headers = team[role].headers
    assert client.patch(f"/api/v1/monitors/{mid}", json={"enabled": False}, headers=headers).status_code == 403
    assert client.delete(f"/api/v1/monitors/{mid}", headers=headers).status_code == 403
    assert client.get(f"/api/v1/monitors/{mid}", headers=headers).status_code == 200


def test_foreign_ids_are_404_even_for_owners(client, team, factory):
    mid = create(client, team["owner"]).json()["id"]
    stranger = factory.member(factory.org(), "owner")
    for method, path in [("get", f"/api/v1/monitors/{mid}"), ("patch", f"/api/v1/monitors/{mid}"),
                         ("delete", f"/api/v1/monitors/{mid}"), ("get", f"/api/v1/monitors/{mid}/checks")]:
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        r = client.request(method, path, headers=stranger.headers, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["type"] == "/problems/not-found"
    assert client.get("/api/v1/monitors", headers=stranger.headers).json() == []
    foreign_viewer = factory.member(stranger.org_slug, "viewer")
    assert client.patch(f"/api/v1/monitors/{mid}", json={"enabled": False},
                        headers=foreign_viewer.headers).status_code == 404


def test_requires_a_token(client):
    assert client.get("/api/v1/monitors").status_code == 401


def test_recent_checks(client, team, rt, clock):
    mid = create(client, team["owner"]).json()["id"]
    for outcome in (CheckOutcome(ok=True, status_code=200, latency_ms=20),
                    CheckOutcome(ok=False, error_kind="timeout", error="No complete response within 10 s."),
                    CheckOutcome(ok=False, status_code=500, latency_ms=5, error_kind="status", error="Unexpected 500")):
        with db.transaction(rt.factory) as s:
            monitors.apply_result(session=s, monitor_id=mid, outcome=outcome, checked_at=clock.now(), now=clock.now())
        clock.advance(seconds=60)
    r = client.get(f"/api/v1/monitors/{mid}/checks?limit=2", headers=team["viewer"].headers)
    assert r.status_code == 200
    rows = r.json()
    assert [(c["ok"], c["status_code"], c["error_kind"]) for c in rows] == [(False, 500, "status"),
                                                                            (False, None, "timeout")]
    assert rows[1]["error"] == "No complete response within 10 s." and rows[0]["latency_ms"] == 5
    assert client.get(f"/api/v1/monitors/{mid}/checks?limit=0", headers=team["viewer"].headers).status_code == 422
    state = client.get(f"/api/v1/monitors/{mid}", headers=team["viewer"].headers).json()
    assert state["state"] == "down" and state["incident_id"] is not None and state["last_ok"] is False


def test_openapi_lists_the_monitor_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/v1/monitors"]) >= {"get", "post"}
    assert set(paths["/api/v1/monitors/{monitor_id}"]) >= {"get", "patch", "delete"}
    assert "get" in paths["/api/v1/monitors/{monitor_id}/checks"]
