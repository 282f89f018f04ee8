"""The scheduler's throughput mechanics: claiming again while saturated, results applied in batches."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.monitors import service as monitors
from blametrail.monitors.engine import Scheduler, _Done
from blametrail.monitors.models import CheckResult, Monitor
from tests.monitors import LocalServer
from tests.monitors.test_service import FAIL, OK, make


@pytest.fixture
def owner(factory):
    return factory.member(factory.org(), "owner").actor


def results_of(rt) -> dict[int, int]:
    with db.transaction(rt.factory) as s:
        return dict(s.execute(select(CheckResult.monitor_id, func.count()).group_by(CheckResult.monitor_id)).all())


def test_a_saturated_scheduler_claims_again_before_its_next_tick(rt, owner):
    # why: it used to claim at most `concurrency` monitors per tick, so 2,000 monitors got 47 checks/s
    rt.settings = rt.settings.model_copy(update={"monitor_concurrency": 2, "monitor_tick_seconds": 30})
    with LocalServer() as server:
        server.delay = 0.05
        ids = [make(rt, owner, name=f"m{i}", url=server.url(f"/m{i}"), timeout_seconds=2) for i in range(8)]
        sched, stop = Scheduler(rt, owner="busy"), threading.Event()
        thread = threading.Thread(target=sched.run_forever, args=(stop,))
        thread.start()
        try:
            deadline = time.monotonic() + 15
            while len(results_of(rt)) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=30)
    assert results_of(rt) == {i: 1 for i in ids}  # all 8, two at a time, long before a second 30 s tick
    assert server.total_hits() == len(ids)


def test_apply_results_applies_a_batch_in_one_transaction(rt, owner, clock):
    ids = [make(rt, owner, name=f"m{i}", service=None) for i in range(3)]
    with db.transaction(rt.factory) as s:
        s.delete(s.get(Monitor, ids[2]))  # deleted while its check ran
    for _ in range(3):
        with db.transaction(rt.factory) as s:
            monitors.apply_results(session=s, now=clock.now(), retention=2, checks=[
                monitors.Checked(ids[0], OK, clock.now()), monitors.Checked(ids[1], FAIL, clock.now()),
                monitors.Checked(ids[2], OK, clock.now())])
        clock.advance(seconds=60)
    assert results_of(rt) == {ids[0]: 2, ids[1]: 2}  # the newest `retention` kept, per monitor
    with db.transaction(rt.factory) as s:
        first, second = s.get(Monitor, ids[0]), s.get(Monitor, ids[1])
        assert (first.state, first.last_ok, second.last_ok, second.consecutive_failures) == ("up", True, False, 3)
        assert second.state == "down" and second.incident_id is not None  # the state machine ran for each


def test_a_batch_that_cannot_be_recorded_together_is_recorded_one_by_one(rt, owner, clock, monkeypatch):
    ids = [make(rt, owner, name=f"m{i}") for i in range(3)]
    sched = Scheduler(rt, owner="solo")
    real = monitors.apply_results
    sizes: list[int] = []

    def picky(*, session, checks, **kwargs):
        sizes.append(len(checks))
        if len(checks) > 1:
            raise RuntimeError("a deadlock, say")
        return real(session=session, checks=checks, **kwargs)

    monkeypatch.setattr(monitors, "apply_results", picky)
    try:
        sched._apply([_Done(target, OK, clock.now(), Future())
                      for target in _targets(rt, ids)])
    finally:
        sched.close()
    assert sizes == [3, 1, 1, 1]
    assert results_of(rt) == {i: 1 for i in ids}


def _targets(rt, ids):
    with db.transaction(rt.factory) as s:
        return monitors.targets(session=s, monitor_ids=ids)


def test_claim_due_claims_monitors_of_different_intervals_once(rt, owner, clock):
    ids = [make(rt, owner, name=f"m{i}", interval_seconds=10 * (1 + i % 3), timeout_seconds=5) for i in range(7)]
    with db.transaction(rt.factory) as s:
        first = monitors.claim_due(session=s, now=clock.now(), owner="a", limit=5)
        second = monitors.claim_due(session=s, now=clock.now(), owner="b", limit=5)
    assert len(first) == 5 and len(second) == 2 and sorted(first + second) == sorted(ids)
    with db.transaction(rt.factory) as s:
        due = {m.id: (m.next_check_at - clock.now()).total_seconds() for m in s.scalars(select(Monitor))}
    assert due == {mid: 10.0 * (1 + i % 3) for i, mid in enumerate(ids)}  # each by its own interval
