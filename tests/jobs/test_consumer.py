"""Generation through a real queue: huey's SQLite storage (embedded default) and Redis (scale-out)."""

from __future__ import annotations

import time

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Postmortem
from blametrail.runtime import build_runtime
from tests.factories import Factory


def _wait_for(rt, pm_id, statuses, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction(rt.factory) as s:
            status = s.get(Postmortem, pm_id).status
        if status in statuses:
            return status
        time.sleep(0.05)
    raise AssertionError(f"postmortem {pm_id} still {status} after {timeout} s")


def _resolve_one(rt, member) -> int:
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=member.actor, now=rt.clock.now(),
                               data=IncidentCreate(title="Queue test", services=["api"]))
        incidents.add_update(session=s, actor=member.actor, incident=inc, now=rt.clock.now(),
                             data=UpdateCreate(body="Restarted the api pods; recovered."))
        postmortems.resolve_incident(session=s, incident=inc, now=rt.clock.now(), resolved_at=None,
                                     by_label=member.actor.label, by_user_id=member.actor.user_id)
        return postmortems.find(session=s, org_id=member.actor.org_id, incident_id=inc.id).id


def _flow(settings, queue_url):
    rt = build_runtime(settings, migrate=False, queue_url=queue_url)
    rt.huey.flush()
    rt.start_background(workers=2, sweep=False)
    try:
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member")
        ids = [_resolve_one(rt, member) for _ in range(5)]
        for pm_id in ids:
            assert _wait_for(rt, pm_id, {"draft", "failed"}) == "draft"
        with db.transaction(rt.factory) as s:
            assert all(s.get(Postmortem, i).sections["summary"] for i in ids)
    finally:
        rt.close()


def test_generation_through_embedded_sqlite_queue(settings, tmp_path):
    _flow(settings, f"sqlite:///{tmp_path / 'queue.db'}")


def test_generation_through_redis_queue(settings, redis_url):
    if redis_url is None:
        pytest.skip("BLAMETRAIL_TEST_REDIS_URL not set (CI sets it and then this test must pass)")
    _flow(settings, redis_url)
