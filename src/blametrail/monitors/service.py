"""Monitors: configuration, the scheduling lease, check results, and the up/down state machine behind incidents.

A monitor opens an incident when `failure_threshold` consecutive checks fail and resolves it (which
auto-triggers the postmortem) when `recovery_threshold` consecutive checks succeed. The incident's timeline
gets one entry per state change, never one per check. Both entries have kind "monitor" and `data`:

state "down" (entry `at` = first_failure_at):
    {"monitor_id": int, "monitor": name, "url": str, "state": "down",
     "first_failure_at": ISO-8601 Z (first failed check of the streak = the incident's started_at),
     "failed_checks": int, "total_checks": int (checks since the first failure, so far),
     "error_kinds": {kind: count}, "last_error": str | None (message of the check that crossed the threshold)}
state "up" (entry `at` = recovered_at):
    {"state": "up", "monitor_id": int, "monitor": name, "first_failure_at": ISO-8601 Z,
     "recovered_at": ISO-8601 Z (FIRST good check of the recovery streak = the incident's resolved_at),
     "failed_checks": int, "total_checks": int (every check from the first failure up to and including the one
     that confirmed recovery), "failure_share": failed_checks / total_checks in 0..1 (4 decimals),
     "error_kinds": {kind: count}}
Error kinds: timeout, connect, dns, tls, status, keyword, too_many_redirects, blocked (the SSRF guard refused the
URL or a redirect hop, see netguard.py), other (see checks.py).
The impact window is therefore first failure → first good check: it matches the real outage within one
check interval at each end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.clock import as_utc, iso
from blametrail.errors import Conflict, InvalidState, NotFound, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.monitors.checks import CheckOutcome, CheckTarget
from blametrail.monitors.models import CheckResult, Monitor
from blametrail.monitors.schemas import MonitorCreate, MonitorUpdate
from blametrail.netguard import OutboundPolicy, has_userinfo, redact_userinfo
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.postmortems import service as postmortems

log = logging.getLogger(__name__)
LEASE_MARGIN_SECONDS = 60  # a lease outlives the check's timeout by this much; a dead scheduler's lease expires
MAX_CHECKS_PAGE = 1000
ERROR_LIMIT = 2000  # characters of a stored check error (the column is unbounded text)
CONFIG_FIELDS = tuple(MonitorCreate.model_fields)


# --- the state machine (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class MonitorState:
    """A monitor's up/down state and the numbers of its current failure streak or outage."""

    state: str = "unknown"  # unknown | up | down
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    first_failure_at: datetime | None = None
    recovery_started_at: datetime | None = None  # first good check of the current recovery streak (while down)
    outage_checks: int = 0
    outage_failures: int = 0
    outage_error_kinds: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Outage:
    """The numbers of an outage at a state change."""

    first_failure_at: datetime
    failed_checks: int
    total_checks: int
    error_kinds: Mapping[str, int]

    @property
    def failure_share(self) -> float:
        return round(self.failed_checks / self.total_checks, 4) if self.total_checks else 0.0


@dataclass(frozen=True)
class Transition:
    """The state after one check, and the state change it caused ("down", "up" or None)."""

    state: MonitorState
    event: str | None = None
    outage: Outage | None = None
    recovered_at: datetime | None = None


def step(
    state: MonitorState, *, ok: bool, error_kind: str | None, checked_at: datetime, failure_threshold: int,
    recovery_threshold: int,
) -> Transition:
    """Apply one check result to the state: count streaks, go down at the failure threshold, up at recovery."""
    kinds = dict(state.outage_error_kinds)
    if state.state != "down":
        if ok:  # a success before the threshold forgets the failure streak
            return Transition(MonitorState(state="up"))
        fresh = state.consecutive_failures == 0 or state.first_failure_at is None
        first = checked_at if fresh else state.first_failure_at
        checks, failures = (0, 0) if fresh else (state.outage_checks, state.outage_failures)
        kinds = {} if fresh else kinds
        kind = error_kind or "other"
        kinds[kind] = kinds.get(kind, 0) + 1
        failures_in_row = state.consecutive_failures + 1
        down = failures_in_row >= failure_threshold
        new = MonitorState(state="down" if down else state.state, consecutive_failures=failures_in_row,
                           first_failure_at=first, outage_checks=checks + 1, outage_failures=failures + 1,
                           outage_error_kinds=kinds)
        if not down:
            return Transition(new)
        return Transition(new, "down", Outage(first, failures + 1, checks + 1, dict(kinds)))
    checks, failures = state.outage_checks + 1, state.outage_failures
    first = state.first_failure_at or checked_at
    if not ok:
        kind = error_kind or "other"
        kinds[kind] = kinds.get(kind, 0) + 1
        return Transition(MonitorState(state="down", consecutive_failures=state.consecutive_failures + 1,
                                       first_failure_at=first, outage_checks=checks, outage_failures=failures + 1,
                                       outage_error_kinds=kinds))
    successes = state.consecutive_successes + 1
    started = state.recovery_started_at if state.consecutive_successes > 0 and state.recovery_started_at else checked_at
    if successes < recovery_threshold:
        return Transition(MonitorState(state="down", consecutive_successes=successes, first_failure_at=first,
                                       recovery_started_at=started, outage_checks=checks, outage_failures=failures,
                                       outage_error_kinds=kinds))
    outage = Outage(first, failures, checks, dict(kinds))
    return Transition(MonitorState(state="up"), "up", outage, recovered_at=started)


def down_data(*, monitor_id: int, name: str, url: str, outage: Outage, last_error: str | None) -> dict:
    """Return the `data` of a "down" timeline entry (the contract in this module's docstring)."""
    return {"monitor_id": monitor_id, "monitor": name, "url": redact_userinfo(url), "state": "down",
            "first_failure_at": iso(outage.first_failure_at), "failed_checks": outage.failed_checks,
            "total_checks": outage.total_checks, "error_kinds": dict(sorted(outage.error_kinds.items())),
            "last_error": last_error}


def up_data(*, monitor_id: int, name: str, outage: Outage, recovered_at: datetime) -> dict:
    """Return the `data` of an "up" timeline entry (the contract in this module's docstring)."""
    return {"state": "up", "monitor_id": monitor_id, "monitor": name, "first_failure_at": iso(outage.first_failure_at),
            "recovered_at": iso(recovered_at), "failed_checks": outage.failed_checks,
            "total_checks": outage.total_checks, "failure_share": outage.failure_share,
            "error_kinds": dict(sorted(outage.error_kinds.items()))}


def _kinds_words(kinds: Mapping[str, int]) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


# --- configuration --------------------------------------------------------------------------------

def _validated(values: dict) -> MonitorCreate:
    try:
        return MonitorCreate.model_validate(values)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "monitor" for e in errors[:5])
        raise ValidationFailed(f"Invalid monitor: {fields}.", errors) from exc


def _check_name_free(session: Session, org_id: int, name: str, except_id: int | None = None) -> None:
    query = select(Monitor.id).where(Monitor.org_id == org_id, Monitor.name == name)
    if except_id is not None:
        query = query.where(Monitor.id != except_id)
    if session.scalar(query.limit(1)) is not None:
        raise Conflict(f"A monitor named {name!r} already exists.")


CREDENTIALS_IN_URL = ("The URL carries credentials (user:password@ before the host): they would be stored in plain "
                      "text and shown to everyone in the organization. Monitors send no credentials: check an "
                      "endpoint that answers without them, such as a health check.")


def _check_no_credentials(url: str) -> None:
    if has_userinfo(url):
        raise ValidationFailed(CREDENTIALS_IN_URL, [{"loc": ["body", "url"], "msg": CREDENTIALS_IN_URL}])


def _check_reachable(url: str, policy: OutboundPolicy | None) -> None:
    """Refuse a URL the SSRF guard would refuse from its spelling alone (no DNS: the host may not resolve yet)."""
    sentence = (policy or OutboundPolicy()).refusal_for_url(url)
    if sentence:
        raise ValidationFailed(sentence, [{"loc": ["body", "url"], "msg": sentence}])


def create(*, session: Session, actor: Actor, data: MonitorCreate, now: datetime,
           policy: OutboundPolicy | None = None) -> Monitor:
    """Create a monitor (owner/admin); its first check is due right away."""
    require(actor.role, Action.MANAGE)
    _check_no_credentials(data.url)
    _check_reachable(data.url, policy)
    _check_name_free(session, actor.org_id, data.name)
    monitor = Monitor(org_id=actor.org_id, **data.model_dump(), next_check_at=now, state="unknown",
                      consecutive_failures=0, consecutive_successes=0, outage_checks=0, outage_failures=0,
                      outage_error_kinds={}, created_at=now, updated_at=now)
    session.add(monitor)
    session.flush()
    return monitor


def list_monitors(*, session: Session, actor: Actor) -> list[Monitor]:
    """Return the organization's monitors by name."""
    require(actor.role, Action.READ)
    return list(session.scalars(
        select(Monitor).where(Monitor.org_id == actor.org_id).order_by(Monitor.name, Monitor.id)))


def get_or_404(*, session: Session, org_id: int, monitor_id: int) -> Monitor:
    """Return the organization's monitor or raise NotFound (other organizations' ids included)."""
    monitor = session.scalar(select(Monitor).where(Monitor.id == monitor_id, Monitor.org_id == org_id))
    if monitor is None:
        raise NotFound(f"Monitor {monitor_id} not found.")
    return monitor


def update(*, session: Session, actor: Actor, monitor_id: int, data: MonitorUpdate, now: datetime,
           policy: OutboundPolicy | None = None) -> Monitor:
    """Change a monitor's configuration (owner/admin); the result must be a valid monitor as a whole."""
    monitor = get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    require(actor.role, Action.MANAGE)
    changes = data.model_dump(exclude_unset=True)
    valid = _validated({f: getattr(monitor, f) for f in CONFIG_FIELDS} | changes)
    if "url" in changes:
        _check_no_credentials(valid.url)
        _check_reachable(valid.url, policy)
    if "name" in changes:
        _check_name_free(session, actor.org_id, valid.name, except_id=monitor.id)
    was_enabled = monitor.enabled
    for name in changes:
        setattr(monitor, name, getattr(valid, name))
    if valid.enabled and not was_enabled:
        monitor.next_check_at = now
    elif monitor.next_check_at > now + timedelta(seconds=valid.interval_seconds):
        monitor.next_check_at = now + timedelta(seconds=valid.interval_seconds)
    monitor.updated_at = now
    session.flush()
    return monitor


def delete_monitor(*, session: Session, actor: Actor, monitor_id: int) -> None:
    """Delete a monitor and its check results (owner/admin); an incident it opened stays as it is."""
    monitor = get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    require(actor.role, Action.MANAGE)
    session.execute(delete(CheckResult).where(CheckResult.monitor_id == monitor.id))
    session.delete(monitor)
    session.flush()


def recent_checks(*, session: Session, org_id: int, monitor_id: int, limit: int = 50) -> list[CheckResult]:
    """Return the monitor's latest check results, newest first."""
    get_or_404(session=session, org_id=org_id, monitor_id=monitor_id)
    return list(session.scalars(
        select(CheckResult).where(CheckResult.monitor_id == monitor_id)
        .order_by(CheckResult.checked_at.desc(), CheckResult.id.desc()).limit(max(1, min(limit, MAX_CHECKS_PAGE)))
    ))


# --- scheduling -----------------------------------------------------------------------------------

def claim_due(*, session: Session, now: datetime, owner: str, limit: int) -> list[int]:
    """Lease up to `limit` due monitors to this scheduler; return the ids it now owns (never another's)."""
    candidates = session.execute(
        select(Monitor.id, Monitor.interval_seconds, Monitor.timeout_seconds)
        .where(Monitor.enabled.is_(True), Monitor.next_check_at <= now,
               or_(Monitor.lease_until.is_(None), Monitor.lease_until < now))
        .order_by(Monitor.next_check_at, Monitor.id).limit(max(0, limit))
    ).all()
    groups: dict[tuple[int, float], list[int]] = {}  # monitors sharing an interval and a timeout: one UPDATE
    for monitor_id, interval, timeout in candidates:
        groups.setdefault((interval, timeout), []).append(monitor_id)
    claimed: set[int] = set()
    for (interval, timeout), ids in groups.items():
        # why: the WHERE re-checks the lease inside the UPDATE, so of several replicas exactly one claims each
        # monitor, and RETURNING says which
        claimed.update(session.scalars(
            sql_update(Monitor)
            .where(Monitor.id.in_(ids), Monitor.enabled.is_(True), Monitor.next_check_at <= now,
                   or_(Monitor.lease_until.is_(None), Monitor.lease_until < now))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=timeout + LEASE_MARGIN_SECONDS),
                    next_check_at=now + timedelta(seconds=interval))
            .returning(Monitor.id).execution_options(synchronize_session=False)))
    return [monitor_id for monitor_id, _, _ in candidates if monitor_id in claimed]


def targets(*, session: Session, monitor_ids: list[int]) -> list[CheckTarget]:
    """Return snapshots of the monitors to check, in the order given."""
    if not monitor_ids:
        return []
    rows = {m.id: m for m in session.scalars(select(Monitor).where(Monitor.id.in_(monitor_ids)))}
    return [CheckTarget(monitor_id=m.id, url=m.url, method=m.method, expected_statuses=tuple(m.expected_statuses or ()),
                        keyword=m.keyword, timeout_seconds=float(m.timeout_seconds))
            for m in (rows.get(i) for i in monitor_ids) if m is not None]


# --- results --------------------------------------------------------------------------------------

def _recovery_start(session: Session, monitor: Monitor) -> datetime | None:
    """Return the time of the first good check of the current recovery streak (from the stored results)."""
    if monitor.state != "down" or monitor.consecutive_successes <= 0:
        return None
    times = session.scalars(
        select(CheckResult.checked_at).where(CheckResult.monitor_id == monitor.id)
        .order_by(CheckResult.checked_at.desc(), CheckResult.id.desc()).limit(monitor.consecutive_successes)
    ).all()
    return min(times) if times else None


def _state_of(monitor: Monitor, recovery_started_at: datetime | None) -> MonitorState:
    return MonitorState(
        state=monitor.state, consecutive_failures=monitor.consecutive_failures,
        consecutive_successes=monitor.consecutive_successes, first_failure_at=monitor.first_failure_at,
        recovery_started_at=recovery_started_at, outage_checks=monitor.outage_checks,
        outage_failures=monitor.outage_failures, outage_error_kinds=dict(monitor.outage_error_kinds or {}),
    )


def _store_state(monitor: Monitor, state: MonitorState) -> None:
    monitor.state = state.state
    monitor.consecutive_failures = state.consecutive_failures
    monitor.consecutive_successes = state.consecutive_successes
    monitor.first_failure_at = state.first_failure_at
    monitor.outage_checks = state.outage_checks
    monitor.outage_failures = state.outage_failures
    monitor.outage_error_kinds = dict(state.outage_error_kinds)


def trim_results(*, session: Session, monitor_id: int, keep: int) -> None:
    """Delete the monitor's check results beyond the newest `keep`."""
    trim_many(session=session, keep={monitor_id: keep})


_TRIM = delete(CheckResult).where(CheckResult.monitor_id == bindparam("m"), CheckResult.id.in_(
    select(CheckResult.id).where(CheckResult.monitor_id == bindparam("m"))
    .order_by(CheckResult.checked_at.desc(), CheckResult.id.desc()).offset(bindparam("keep"))
)).execution_options(synchronize_session=False)


def trim_many(*, session: Session, keep: dict[int, int]) -> None:
    """Delete each monitor's check results beyond its newest keep[monitor id], in one executemany."""
    if keep:
        session.flush()  # why: a Core statement on the session's connection does not autoflush
        session.connection().execute(_TRIM, [{"m": monitor_id, "keep": max(1, n)}
                                             for monitor_id, n in sorted(keep.items())])


@dataclass(frozen=True)
class Checked:
    """A check's outcome, to apply with apply_results."""

    monitor_id: int
    outcome: CheckOutcome
    checked_at: datetime


def apply_results(*, session: Session, checks: list[Checked], now: datetime, owner: str | None = None,
                  retention: int = 1000) -> None:
    """apply_result for several checks in one transaction: the monitors are locked and read in one statement (in id
    order, so two schedulers never deadlock), and the writes go out together."""
    ids = sorted({c.monitor_id for c in checks})
    for i in range(0, len(ids), 500):
        session.scalars(select(Monitor).where(Monitor.id.in_(ids[i:i + 500])).order_by(Monitor.id).with_for_update()
                        .execution_options(populate_existing=True)).all()
    keep: dict[int, int] = {}
    for c in checks:
        if apply_result(session=session, monitor_id=c.monitor_id, outcome=c.outcome, checked_at=c.checked_at, now=now,
                        owner=owner, retention=retention, locked=True, batch=True) is not None:
            keep[c.monitor_id] = max(retention, session.get(Monitor, c.monitor_id).recovery_threshold)
    trim_many(session=session, keep=keep)  # flushes the batch's writes first


def apply_result(
    *, session: Session, monitor_id: int, outcome: CheckOutcome, checked_at: datetime, now: datetime,
    owner: str | None = None, retention: int = 1000, locked: bool = False, batch: bool = False,
) -> CheckResult | None:
    """Store a check result, keep the newest `retention`, advance the state machine and open/resolve incidents.
    `locked`: this transaction has already locked and read the monitor; `batch`: the caller flushes and trims
    (apply_results)."""
    if locked:
        monitor = session.get(Monitor, monitor_id)
    else:
        monitor = session.get(Monitor, monitor_id, with_for_update=True, populate_existing=True)
    if monitor is None:  # deleted while its check ran
        return None
    if owner is None or monitor.lease_owner == owner:
        monitor.lease_owner, monitor.lease_until = None, None
    # why: a result older than the last one applied (a slow replica) is history, not news: store it, don't act on it
    current = monitor.enabled and (monitor.last_checked_at is None or checked_at >= monitor.last_checked_at)
    recovery_started_at = _recovery_start(session, monitor) if current else None
    # why: a check's error quotes a remote server or an exception; the flush guard would refuse NUL or over-long
    # text with a 422, which in this job means a monitor that can never record its checks again
    outcome = replace(outcome, error_kind=db.fit(CheckResult.error_kind, outcome.error_kind),
                      error=db.fit(CheckResult.error, outcome.error, limit=ERROR_LIMIT))
    result = CheckResult(org_id=monitor.org_id, monitor_id=monitor.id, checked_at=checked_at, ok=outcome.ok,
                         status_code=outcome.status_code, latency_ms=outcome.latency_ms, error_kind=outcome.error_kind,
                         error=outcome.error)
    session.add(result)
    if current:
        t = step(_state_of(monitor, recovery_started_at), ok=outcome.ok, error_kind=outcome.error_kind,
                 checked_at=checked_at, failure_threshold=monitor.failure_threshold,
                 recovery_threshold=monitor.recovery_threshold)
        _store_state(monitor, t.state)
        monitor.last_checked_at, monitor.last_ok = checked_at, outcome.ok
        if not outcome.ok:
            monitor.last_error = outcome.error
        if t.event == "down":
            _went_down(session, monitor, t.outage, outcome, checked_at, now)
        elif t.event == "up":
            _came_up(session, monitor, t.outage, t.recovered_at, checked_at, now)
    if not batch:
        session.flush()
        trim_results(session=session, monitor_id=monitor.id, keep=max(retention, monitor.recovery_threshold))
    return result


def _went_down(session: Session, monitor: Monitor, outage: Outage, outcome: CheckOutcome, checked_at: datetime,
               now: datetime) -> None:
    label = f"monitor:{monitor.name}"
    incident = None
    if monitor.service:
        incident = incidents.find_open_for_service(session=session, org_id=monitor.org_id, service=monitor.service)
    if incident is None:
        incident = incidents.open_system(
            session=session, org_id=monitor.org_id, title=f"{monitor.name} is down", severity=monitor.severity,
            services=[monitor.service] if monitor.service else [], started_at=outage.first_failure_at, source="monitor",
            source_ref=f"monitor:{monitor.id}", opened_by=label, now=now,
            description=f"Monitor {monitor.name} ({monitor.method} {redact_userinfo(monitor.url)}) failed "
                        f"{outage.failed_checks} consecutive checks.",
        )
    monitor.incident_id = incident.id
    body = (f"Monitor {monitor.name} is down: {outage.failed_checks} of {outage.total_checks} checks failed since "
            f"{iso(outage.first_failure_at)} ({_kinds_words(outage.error_kinds)}); confirmed at {iso(checked_at)}. "
            f"Last error: {outcome.error or 'none'}")
    incidents.add_entry(session=session, incident=incident, kind="monitor", at=outage.first_failure_at, body=body,
                        now=now, author=label,
                        data=down_data(monitor_id=monitor.id, name=monitor.name, url=monitor.url, outage=outage,
                                       last_error=outcome.error))


def _came_up(session: Session, monitor: Monitor, outage: Outage, recovered_at: datetime, checked_at: datetime,
             now: datetime) -> None:
    label = f"monitor:{monitor.name}"
    incident = session.get(Incident, monitor.incident_id) if monitor.incident_id else None
    monitor.incident_id = None
    if incident is None:  # deleted meanwhile: nothing to record on
        return
    body = (f"Monitor {monitor.name} recovered at {iso(recovered_at)} (confirmed at {iso(checked_at)}): "
            f"{outage.failed_checks} of {outage.total_checks} checks failed ({outage.failure_share:.0%}) since "
            f"{iso(outage.first_failure_at)} ({_kinds_words(outage.error_kinds)}).")
    incidents.add_entry(session=session, incident=incident, kind="monitor", at=recovered_at, body=body, now=now,
                        author=label, data=up_data(monitor_id=monitor.id, name=monitor.name, outage=outage,
                                                   recovered_at=recovered_at))
    if incident.status != "open" or incident.source != "monitor":
        return  # a person resolved it already, or it belongs to an alert source or a person
    still_down = session.scalar(select(func.count(Monitor.id)).where(
        Monitor.incident_id == incident.id, Monitor.id != monitor.id, Monitor.state == "down"))
    if still_down:
        return  # another monitor attached to this incident still fails; the last one to recover resolves it
    resolved_at = min(max(recovered_at, incident.started_at), now)
    try:
        postmortems.resolve_incident(session=session, incident=incident, now=now, resolved_at=resolved_at,
                                     by_label=label, by_user_id=None)
    except InvalidState:  # why: a person resolved it in the same instant; their resolution stands
        log.info("incident %s was resolved concurrently; monitor %s only recorded its recovery",
                 incident.id, monitor.id)


LAG_GRACE = timedelta(seconds=5)  # a check due this recently is on time: the scheduler looks every second or so
LATE_NOTICE = timedelta(seconds=30)  # the monitors page warns when the oldest waiting check is this late


def schedule_lag(*, session: Session, now: datetime, org_id: int | None = None) -> dict:
    """Return how far behind the checks are: how many are overdue (due, not being checked) and by how much the oldest
    waits, in seconds — for one organization or (None) the whole installation."""
    query = select(func.count(), func.min(Monitor.next_check_at)).where(
        Monitor.enabled.is_(True), Monitor.next_check_at <= now - LAG_GRACE,
        or_(Monitor.lease_until.is_(None), Monitor.lease_until < now))
    if org_id is not None:
        query = query.where(Monitor.org_id == org_id)
    overdue, oldest = session.execute(query).one()
    lag = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return {"overdue": int(overdue or 0), "lag_seconds": round(max(lag, 0.0), 1),
            "late": lag >= LATE_NOTICE.total_seconds()}
