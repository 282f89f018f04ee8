"""End to end: a local server fails for a while; the monitor opens and auto-resolves an incident, and the
postmortem's impact duration matches the real outage within one check interval."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.incidents.models import Incident
from blametrail.monitors.engine import Scheduler
from blametrail.monitors.models import Monitor
from blametrail.postmortems.models import Postmortem
from tests.factories import Factory
from tests.monitors import LocalServer, api_payload

INTERVAL = 60


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def test_outage_opens_and_auto_resolves_an_incident_whose_postmortem_matches_it(client, factory, rt, clock, server):
    owner = factory.member(factory.org(plan="pro"), "owner")
    r = client.post("/api/v1/monitors", headers=owner.headers,
                    json=api_payload(url=server.url(), interval_seconds=INTERVAL, timeout_seconds=3))
    assert r.status_code == 201, r.text
    scheduler = Scheduler(rt, owner="e2e")

    def tick_then_wait(seconds: float = INTERVAL) -> None:
        assert scheduler.tick() == 1
        clock.advance(seconds=seconds)

    try:
        tick_then_wait()
        tick_then_wait(30)
        server.status = 503  # the outage begins between two checks
        outage_start = clock.advance(seconds=30)
        first_failure = clock.now()
        for _ in range(5):
            tick_then_wait()
        outage_end = clock.advance(seconds=-15)  # 45 s after the last failed check
        server.status = 200
        clock.advance(seconds=15)
        first_good = clock.now()
        tick_then_wait()
        assert scheduler.tick() == 1
        assert scheduler.tick() == 0  # nothing is due again before the next interval
    finally:
        scheduler.close()
    assert server.total_hits() == 9

    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(Incident.id))) == 1
        incident = s.scalar(select(Incident))
        assert incident.source == "monitor" and incident.status == "resolved"
        assert incident.started_at == first_failure and incident.resolved_at == first_good
        assert incident.resolved_by == "monitor:checkout" and incident.service_names == ["checkout"]
        pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident.id))
        assert pm is not None and pm.status == "draft", incident.postmortem_skip_reason
        assert s.scalar(select(Monitor)).state == "up"

    timeline = client.get(f"/api/v1/incidents/{incident.id}/timeline", headers=owner.headers).json()
    states = [i["data"] for i in timeline if i["source"] == "monitor"]
    assert [d["state"] for d in states] == ["down", "up"]
    down, up = states
    assert (down["failed_checks"], down["total_checks"], down["error_kinds"]) == (2, 2, {"status": 2})
    assert down["first_failure_at"] == first_failure.strftime("%Y-%m-%dT%H:%M:%SZ") and down["url"] == server.url()
    assert "503" in down["last_error"]
    assert (up["failed_checks"], up["total_checks"], up["error_kinds"]) == (5, 7, {"status": 5})
    assert up["recovered_at"] == first_good.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert up["failure_share"] == round(5 / 7, 4)

    real_minutes = (outage_end - outage_start).total_seconds() / 60
    drafted = pm.sections["customer_impact"]["duration_minutes"]
    assert drafted == 5
    assert abs(drafted - real_minutes) <= INTERVAL / 60
    api = client.get(f"/api/v1/incidents/{incident.id}", headers=owner.headers).json()
    assert api["duration_minutes"] == drafted and api["postmortem_status"] == "draft"


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_the_background_scheduler_thread_runs_by_itself(settings):
    from blametrail.runtime import build_runtime

    fast = settings.model_copy(update={"monitor_tick_seconds": 0.2})
    rt = build_runtime(fast, migrate=False, immediate=True, queue_url="memory://")  # SystemClock: real time
    factory = Factory(rt)
    owner = factory.member(factory.org(plan="pro"), "owner").actor
    try:
        with LocalServer() as server:
            server.status = 500
            from blametrail.monitors import service as monitors
            from blametrail.monitors.schemas import MonitorCreate

            with db.transaction(rt.factory) as s:
                mid = monitors.create(session=s, actor=owner, now=rt.clock.now(), data=MonitorCreate(
                    **api_payload(url=server.url(), interval_seconds=10, timeout_seconds=2, failure_threshold=1,
                                  recovery_threshold=1))).id

            def monitor():
                with db.transaction(rt.factory) as s:
                    return s.get(Monitor, mid)

            rt.start_background(workers=0, sweep=False, scheduler=True)
            assert _wait_for(lambda: monitor().state == "down", 5), "the scheduler never checked the monitor"
            incident_id = monitor().incident_id
            server.status = 200
            assert _wait_for(lambda: monitor().state == "up", 15), "the scheduler did not check again"
            rt.stop_background()
        with db.transaction(rt.factory) as s:
            incident = s.get(Incident, incident_id)
            assert incident.status == "resolved" and incident.resolved_by == "monitor:checkout"
            assert s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id)) is not None
        assert server.total_hits() == 2
    finally:
        rt.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_serve_lifespan_starts_the_scheduler_as_configured(settings, enabled):
    from fastapi.testclient import TestClient

    from blametrail.app import create_app
    from blametrail.runtime import build_runtime

    configured = settings.model_copy(update={"monitor_scheduler": enabled})
    rt = build_runtime(configured, migrate=False, immediate=True, queue_url="memory://")
    try:
        with TestClient(create_app(configured, runtime=rt, background=True)):
            assert (rt._scheduler is not None and rt._scheduler.is_alive()) is enabled
        assert rt._scheduler is None
    finally:
        rt.close()
