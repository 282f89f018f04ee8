"""Background writers store what a remote server said, cut to fit, instead of failing on the flush guard (issue 11)."""

from __future__ import annotations

import pytest

from blametrail import db
from blametrail.integrations import service as connections
from blametrail.monitors import engine
from blametrail.monitors.checks import CheckOutcome
from blametrail.monitors.service import ERROR_LIMIT

LONG = "upstream said: " + "\x00garbage\ud800 " * 1000  # NUL and a lone surrogate: PostgreSQL/UTF-8 cannot store them


@pytest.fixture
def admin(factory):
    return factory.member(factory.org(), "admin")


def test_a_check_error_is_stored_cut_and_cleaned_by_the_scheduler(client, rt, admin, monkeypatch):
    made = client.post("/api/v1/monitors", headers=admin.headers, json={
        "name": "api", "url": "http://10.0.0.9/health", "failure_threshold": 1})
    assert made.status_code == 201, made.text
    monkeypatch.setattr(engine, "run_check", lambda _client, _target: CheckOutcome(
        ok=False, error_kind="other", error=LONG))
    scheduler = engine.Scheduler(rt, owner="test")
    try:
        assert scheduler.tick() == 1
    finally:
        scheduler.close()
    checks = client.get(f"/api/v1/monitors/{made.json()['id']}/checks", headers=admin.headers).json()
    assert len(checks) == 1 and checks[0]["ok"] is False
    error = checks[0]["error"]
    assert len(error) == ERROR_LIMIT and error.endswith("…") and error.startswith("upstream said: ")
    assert "\x00" not in error and "\ud800" not in error
    monitor = client.get(f"/api/v1/monitors/{made.json()['id']}", headers=admin.headers).json()
    assert monitor["last_error"] == error and monitor["state"] == "down" and monitor["incident_id"]


def test_a_connection_test_error_is_stored_cut_and_cleaned(client, rt, admin):
    made = client.post("/api/v1/connections", headers=admin.headers, json={
        "name": "prom", "provider": "prometheus", "endpoint": "http://10.0.0.9:9090"})
    with db.transaction(rt.factory) as s:
        connection = connections.get_or_404(session=s, org_id=admin.actor.org_id, connection_id=made.json()["id"])
        connections.record_test(session=s, connection=connection, now=rt.clock.now(),
                                outcome=connections.TestOutcome(ok=False, error=LONG))
    shown = client.get(f"/api/v1/connections/{made.json()['id']}", headers=admin.headers).json()
    assert len(shown["last_test_error"]) == connections.ERROR_LIMIT and "\x00" not in shown["last_test_error"]
