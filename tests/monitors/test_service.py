"""Monitor services on a real database: the lease, concurrent schedulers, retention, incidents opened and resolved."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.errors import Conflict, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident, TimelineEntry
from blametrail.incidents.schemas import IncidentCreate
from blametrail.monitors import service as monitors
from blametrail.monitors.checks import CheckOutcome
from blametrail.monitors.engine import Scheduler
from blametrail.monitors.models import CheckResult, Monitor
from blametrail.monitors.schemas import MonitorCreate, MonitorUpdate
from blametrail.postmortems import service as postmortems
from tests.monitors import LocalServer

OK = CheckOutcome(ok=True, status_code=200, latency_ms=12)
FAIL = CheckOutcome(ok=False, status_code=503, latency_ms=8, error_kind="status",
                    error="Unexpected status 503 (expected 2xx or 3xx).")


@pytest.fixture
def owner(factory):
    return factory.member(factory.org(), "owner").actor


def make(rt, actor, **fields):
    values = {"name": "checkout", "url": "http://127.0.0.1:9/health", "service": "checkout", **fields}
    with db.transaction(rt.factory) as s:
        return monitors.create(session=s, actor=actor, data=MonitorCreate(**values), now=rt.clock.now()).id


def apply(rt, monitor_id, outcome, *, retention=1000, at=None):
    with db.transaction(rt.factory) as s:
        monitors.apply_result(session=s, monitor_id=monitor_id, outcome=outcome, checked_at=at or rt.clock.now(),
                              now=rt.clock.now(), retention=retention)


def load(rt, model, ident):
    with db.transaction(rt.factory) as s:
        obj = s.get(model, ident)
        s.expunge(obj)
        return obj


def monitor_entries(rt, incident_id):
    with db.transaction(rt.factory) as s:
        return [(e.data or {}) for e in s.scalars(select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "monitor").order_by(TimelineEntry.id))]


# --- configuration ------------------------------------------------------------------------------

def test_update_validates_the_whole_monitor(rt, owner):
    mid = make(rt, owner, interval_seconds=30, timeout_seconds=10)
    with db.transaction(rt.factory) as s, pytest.raises(ValidationFailed) as err:
        monitors.update(session=s, actor=owner, monitor_id=mid, data=MonitorUpdate(timeout_seconds=30),
                        now=rt.clock.now())
    assert "timeout_seconds must be shorter" in str(err.value.extra["errors"])
    with db.transaction(rt.factory) as s, pytest.raises(ValidationFailed):
        monitors.update(session=s, actor=owner, monitor_id=mid, data=MonitorUpdate(name=None), now=rt.clock.now())


def test_update_pulls_the_next_check_in_when_the_interval_shrinks(rt, owner, clock):
    mid = make(rt, owner, interval_seconds=3600)
    with db.transaction(rt.factory) as s:
        s.get(Monitor, mid).next_check_at = clock.now() + timedelta(hours=1)
    with db.transaction(rt.factory) as s:
        m = monitors.update(session=s, actor=owner, monitor_id=mid, data=MonitorUpdate(interval_seconds=60),
                            now=clock.now())
        assert m.next_check_at == clock.now() + timedelta(seconds=60)


def test_names_are_unique_per_organization(rt, owner, factory):
    make(rt, owner)
    with pytest.raises(Conflict):
        make(rt, owner)
    other = factory.member(factory.org(), "admin").actor
    make(rt, other)  # another organization may use the same name


# --- the lease ----------------------------------------------------------------------------------

def test_claim_due_leases_once_and_pushes_the_next_check(rt, owner, clock):
    mid = make(rt, owner, interval_seconds=60, timeout_seconds=5)
    now = clock.now()
    with db.transaction(rt.factory) as s:
        assert monitors.claim_due(session=s, now=now, owner="a", limit=10) == [mid]
    with db.transaction(rt.factory) as s:
        assert monitors.claim_due(session=s, now=now, owner="b", limit=10) == []
    m = load(rt, Monitor, mid)
    assert m.lease_owner == "a" and m.next_check_at == now + timedelta(seconds=60)
    assert m.lease_until == now + timedelta(seconds=5 + monitors.LEASE_MARGIN_SECONDS)


def test_an_expired_lease_can_be_taken_over(rt, owner, clock):
    mid = make(rt, owner, interval_seconds=10, timeout_seconds=5)
    with db.transaction(rt.factory) as s:
        monitors.claim_due(session=s, now=clock.now(), owner="dead", limit=10)
    clock.advance(seconds=30)  # due again, but the dead scheduler's lease still holds
    with db.transaction(rt.factory) as s:
        assert monitors.claim_due(session=s, now=clock.now(), owner="b", limit=10) == []
    clock.advance(seconds=60)
    with db.transaction(rt.factory) as s:
        assert monitors.claim_due(session=s, now=clock.now(), owner="b", limit=10) == [mid]


def test_disabled_monitors_are_never_claimed(rt, owner, clock):
    make(rt, owner, enabled=False)
    with db.transaction(rt.factory) as s:
        assert monitors.claim_due(session=s, now=clock.now() + timedelta(days=1), owner="a", limit=10) == []


def test_applying_a_result_releases_the_lease(rt, owner, clock):
    mid = make(rt, owner)
    with db.transaction(rt.factory) as s:
        monitors.claim_due(session=s, now=clock.now(), owner="a", limit=10)
    with db.transaction(rt.factory) as s:
        monitors.apply_result(session=s, monitor_id=mid, outcome=OK, checked_at=clock.now(), now=clock.now(), owner="a")
    m = load(rt, Monitor, mid)
    assert (m.lease_owner, m.lease_until, m.state, m.last_ok) == (None, None, "up", True)


def test_overlapping_claims_hand_each_monitor_to_exactly_one_scheduler(rt, owner, clock):
    ids = [make(rt, owner, name=f"m{i}") for i in range(5)]
    now = clock.now()
    first = rt.factory()
    got: dict[str, list[int]] = {}
    try:
        got["a"] = monitors.claim_due(session=first, now=now, owner="a", limit=10)  # holds its locks, uncommitted

        def second():
            with db.transaction(rt.factory) as s:
                got["b"] = monitors.claim_due(session=s, now=now, owner="b", limit=10)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)  # b waits for a's transaction (row locks on PostgreSQL, the write lock on SQLite)
        db.commit(first)
    finally:
        first.close()
    thread.join(timeout=30)
    assert sorted(got["a"]) == ids and got["b"] == []


def test_two_schedulers_at_the_same_instant_never_run_a_check_twice(rt, owner, clock):
    with LocalServer() as server:
        ids = [make(rt, owner, name=f"m{i}", url=server.url(f"/m{i}"), timeout_seconds=2) for i in range(12)]
        schedulers = [Scheduler(rt, owner="replica-a"), Scheduler(rt, owner="replica-b")]
        try:
            for round_ in range(1, 4):
                barrier = threading.Barrier(2)
                started = []

                def go(sched):
                    barrier.wait()
                    started.append(sched.tick())

                threads = [threading.Thread(target=go, args=(sc,)) for sc in schedulers]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                assert sum(started) == len(ids)
                assert all(server.hits[f"/m{i}"] == round_ for i in range(12)), server.hits
                with db.transaction(rt.factory) as s:
                    assert s.scalar(select(func.count(CheckResult.id))) == len(ids) * round_
                clock.advance(seconds=60)
        finally:
            for sc in schedulers:
                sc.close()
    assert server.total_hits() == 36


# --- results, retention and the state machine on the database -------------------------------------

def test_retention_keeps_the_newest_results(rt, owner, clock):
    mid = make(rt, owner)
    for _ in range(15):
        apply(rt, mid, OK, retention=10)
        clock.advance(seconds=60)
    with db.transaction(rt.factory) as s:
        times = list(s.scalars(select(CheckResult.checked_at).where(CheckResult.monitor_id == mid)
                               .order_by(CheckResult.checked_at)))
    assert len(times) == 10
    assert times[0] == clock.now() - timedelta(minutes=10) and times[-1] == clock.now() - timedelta(minutes=1)


def test_the_scheduler_applies_the_retention_setting(rt, owner, clock):
    rt.settings = rt.settings.model_copy(update={"check_retention": 10})
    with LocalServer() as server:
        mid = make(rt, owner, url=server.url(), interval_seconds=10, timeout_seconds=2)
        sched = Scheduler(rt, owner="solo")
        try:
            for _ in range(13):
                sched.tick()
                clock.advance(seconds=10)
        finally:
            sched.close()
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(CheckResult.id)).where(CheckResult.monitor_id == mid)) == 10
    assert server.total_hits() == 13


def test_recent_checks_newest_first_and_org_scoped(rt, owner, clock, factory):
    mid = make(rt, owner)
    apply(rt, mid, FAIL)
    clock.advance(seconds=60)
    apply(rt, mid, OK)
    with db.transaction(rt.factory) as s:
        rows = monitors.recent_checks(session=s, org_id=owner.org_id, monitor_id=mid, limit=10)
        assert [r.ok for r in rows] == [True, False]
        assert rows[1].error_kind == "status" and rows[1].status_code == 503
    stranger = factory.member(factory.org(), "owner").actor
    with db.transaction(rt.factory) as s, pytest.raises(Exception) as err:
        monitors.recent_checks(session=s, org_id=stranger.org_id, monitor_id=mid)
    assert err.value.status == 404


def test_outage_opens_then_resolves_its_incident(rt, owner, clock):
    mid = make(rt, owner, severity="SEV-1")
    apply(rt, mid, OK)
    first_failure = clock.advance(seconds=60)
    apply(rt, mid, FAIL)
    assert load(rt, Monitor, mid).incident_id is None
    clock.advance(seconds=60)
    apply(rt, mid, CheckOutcome(ok=False, error_kind="timeout", error="No complete response"))
    m = load(rt, Monitor, mid)
    assert m.state == "down" and m.incident_id is not None
    inc = load(rt, Incident, m.incident_id)
    assert (inc.title, inc.severity, inc.source, inc.source_ref, inc.status) == (
        "checkout is down", "SEV-1", "monitor", f"monitor:{mid}", "open")
    assert inc.started_at == first_failure
    for _ in range(3):
        clock.advance(seconds=60)
        apply(rt, mid, FAIL)
    assert len(monitor_entries(rt, inc.id)) == 1  # no row per check
    recovered = clock.advance(seconds=60)
    apply(rt, mid, OK)
    clock.advance(seconds=60)
    apply(rt, mid, OK)
    inc = load(rt, Incident, inc.id)
    assert inc.status == "resolved" and inc.resolved_at == recovered and inc.resolved_by == "monitor:checkout"
    down, up = monitor_entries(rt, inc.id)
    assert down["state"] == "down" and down["failed_checks"] == 2 and down["error_kinds"] == {"status": 1, "timeout": 1}
    assert down["last_error"] == "No complete response"
    assert up["state"] == "up" and up["failed_checks"] == 5 and up["total_checks"] == 7
    assert up["error_kinds"] == {"status": 4, "timeout": 1} and up["failure_share"] == round(5 / 7, 4)
    assert up["recovered_at"] == recovered.strftime("%Y-%m-%dT%H:%M:%SZ")
    m = load(rt, Monitor, mid)
    assert (m.state, m.incident_id, m.first_failure_at, m.outage_checks) == ("up", None, None, 0)


def test_down_monitor_attaches_to_an_open_incident_of_its_service_and_leaves_it_open(rt, owner, clock):
    with db.transaction(rt.factory) as s:
        manual = incidents.create(session=s, actor=owner, data=IncidentCreate(title="Checkout slow",
                                  services=["checkout"]), now=clock.now()).id
    mid = make(rt, owner, failure_threshold=1, recovery_threshold=1)
    apply(rt, mid, FAIL)
    assert load(rt, Monitor, mid).incident_id == manual
    clock.advance(seconds=60)
    apply(rt, mid, OK)
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(Incident.id))) == 1
    assert load(rt, Incident, manual).status == "open"  # a person's incident is theirs to resolve
    assert [d["state"] for d in monitor_entries(rt, manual)] == ["down", "up"]


def test_last_monitor_to_recover_resolves_a_shared_incident(rt, owner, clock):
    a = make(rt, owner, name="a", failure_threshold=1, recovery_threshold=1)
    b = make(rt, owner, name="b", failure_threshold=1, recovery_threshold=1)
    apply(rt, a, FAIL)
    apply(rt, b, FAIL)
    inc_id = load(rt, Monitor, a).incident_id
    assert load(rt, Monitor, b).incident_id == inc_id
    clock.advance(seconds=60)
    apply(rt, a, OK)
    assert load(rt, Incident, inc_id).status == "open"
    clock.advance(seconds=60)
    apply(rt, b, OK)
    inc = load(rt, Incident, inc_id)
    assert inc.status == "resolved" and inc.resolved_by == "monitor:b"


def test_recovery_after_a_person_resolved_only_records_evidence(rt, owner, clock):
    mid = make(rt, owner, failure_threshold=1, recovery_threshold=1)
    apply(rt, mid, FAIL)
    inc_id = load(rt, Monitor, mid).incident_id
    clock.advance(seconds=30)
    with db.transaction(rt.factory) as s:
        postmortems.resolve_incident(session=s, incident=s.get(Incident, inc_id), now=clock.now(), resolved_at=None,
                                     by_label="alice", by_user_id=None)
    clock.advance(seconds=30)
    apply(rt, mid, OK)
    assert load(rt, Incident, inc_id).resolved_by == "alice"
    assert [d["state"] for d in monitor_entries(rt, inc_id)] == ["down", "up"]
    assert load(rt, Monitor, mid).state == "up"


def test_a_late_result_is_stored_but_does_not_move_the_state(rt, owner, clock):
    mid = make(rt, owner, failure_threshold=1)
    apply(rt, mid, OK)
    apply(rt, mid, FAIL, at=clock.now() - timedelta(seconds=30))
    m = load(rt, Monitor, mid)
    assert m.state == "up" and m.incident_id is None
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(CheckResult.id))) == 2


def test_a_result_for_a_deleted_monitor_is_dropped(rt, owner, clock):
    mid = make(rt, owner)
    with db.transaction(rt.factory) as s:
        monitors.delete_monitor(session=s, actor=owner, monitor_id=mid)
    apply(rt, mid, FAIL)
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(CheckResult.id))) == 0
