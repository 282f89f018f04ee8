"""The postponed rebuild through a real queue: huey's scheduler runs the delayed refresh (SQLite and Redis storage)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.runtime import build_runtime
from blametrail.summaries import service as summaries
from tests.factories import Factory


def _wait_for(rt, incident_id, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction(rt.factory) as s:
            row = summaries.find(session=s, incident_id=incident_id)
        if row is not None and predicate(row):
            return row
        time.sleep(0.05)
    raise AssertionError(f"summary of incident {incident_id}: {row and (row.status, row.content)} after {timeout} s")


def _flow(settings, queue_url):
    settings = settings.model_copy(update={"summary_min_interval_seconds": 1})
    rt = build_runtime(settings, migrate=False, queue_url=queue_url)
    rt.huey.flush()
    rt.start_background(workers=2, sweep=False)
    try:
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member")
        with db.transaction(rt.factory) as s:
            iid = incidents.create(session=s, actor=member.actor, now=rt.clock.now(),
                                   data=IncidentCreate(title="Queue test", services=["api"])).id
        first = _wait_for(rt, iid, lambda r: r.status == "ready")
        for n in range(5):  # evidence right after the build: postponed to the end of the interval, gathered in one
            with db.transaction(rt.factory) as s:
                inc = s.get(incidents.Incident, iid)
                incidents.add_update(session=s, actor=member.actor, incident=inc, now=rt.clock.now(),
                                     data=UpdateCreate(body=f"Wave {n}"))
        last = _wait_for(rt, iid, lambda r: r.status == "ready" and "Wave 4" in r.content["what_is_happening"])
        assert last.generated_at >= first.generated_at + timedelta(seconds=1)  # not back to back
    finally:
        rt.close()


def test_a_postponed_rebuild_runs_through_the_embedded_sqlite_queue(settings, tmp_path):
    _flow(settings, f"sqlite:///{tmp_path / 'queue.db'}")


def test_a_postponed_rebuild_runs_through_the_redis_queue(settings, redis_url):
    if not redis_url:
        pytest.skip("BLAMETRAIL_TEST_REDIS_URL not set (CI sets it and then this test must pass)")
    _flow(settings, redis_url)
