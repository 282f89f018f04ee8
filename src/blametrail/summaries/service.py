"""The live incident summary: its stored row, the debounced refresh request, and rebuilding it.

The summary is rebuilt from the same evidence as the postmortem (the stored pack plus the connectors' metrics and
logs, the latter cached on the row for a while) whenever evidence arrives on an open incident: the incidents service
fires its hooks, which the composition root wires to `evidence_changed` and `request_refresh`; these defer the
`refresh_summary` job unless a refresh is already pending (debounce). The job `claim`s the row: within the minimum
interval after the last build it postpones itself to the interval's end instead (so a storm rebuilds at most once per
interval), otherwise it builds with the organization's engine when the organization has AI turned on, grounding the
answer; on any error, or when AI is off, it writes the built-in summary (pure and deterministic) and records why.

Row states: queued (a refresh is asked for; `requested_at` is when it is due), building (a worker has claimed it;
`requested_at` is when), ready, failed. A queued or building row whose job was lost (a restart with an in-memory
queue, a killed worker, a dropped enqueue) is re-queued by `sweep` and by a page or API read (`revive`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.analysis.evidence import EvidencePack
from blametrail.deploys.models import Deploy
from blametrail.engines.base import Engine
from blametrail.engines.summary import SummaryOut, ground_summary, write_summary
from blametrail.incidents.models import Incident, TimelineEntry
from blametrail.orgs.models import Organization
from blametrail.summaries.models import IncidentSummary

log = logging.getLogger(__name__)

TASK = "refresh_summary"
STALE_QUEUED = timedelta(minutes=2)  # a request not started this long after it was due is presumed lost
# why: a build makes at most one model call (bounded by the AI timeout and retries) and one round of connector
# fetches; one still unfinished after this long had its worker killed, and is re-queued
STALE_BUILDING = timedelta(minutes=15)
PENDING = ("queued", "building")
__all__ = ["PENDING", "STALE_BUILDING", "STALE_QUEUED", "TASK", "Claim", "SummaryOut", "claim", "evidence_changed",
           "find", "request_refresh", "request_refreshes", "revive", "summarize_with", "sweep", "to_read",
           "write_summary"]


def summarize_with(engine: Engine | None, pack: EvidencePack) -> tuple[dict, str, str | None]:
    """Summarise with the engine (None: AI is off, the built-in writer); return (content, engine label, error)."""
    if engine is None:
        return write_summary(pack), "builtin", None
    label = getattr(engine, "label", type(engine).__name__)
    try:
        # why: grounded here too, whatever the engine: the page shows only what the evidence supports
        return ground_summary(engine.summarize(pack).content, pack), label, None
    except Exception as exc:  # why: the team always gets a summary; the reason is kept for the page
        log.warning("live summary of incident %s: %s failed, the built-in summary is used instead: %s",
                    pack.incident.id, label, exc)
        return write_summary(pack), "builtin", f"{label} failed: {exc} This is the built-in summary instead."


def evidence_version(pack: EvidencePack) -> str:
    """Return a hash of what the summary depends on (not the moving window end of an open incident)."""
    inc = pack.incident
    key = "|".join([inc.title, inc.severity or "", str(inc.resolved_at), ",".join(inc.services),
                    ",".join(sorted(pack.evidence_ids()))])
    return hashlib.sha256(key.encode()).hexdigest()


def find(*, session: Session, incident_id: int) -> IncidentSummary | None:
    """Return the incident's stored summary row, if any."""
    return session.scalar(select(IncidentSummary).where(IncidentSummary.incident_id == incident_id))


def _row(session: Session, incident, now: datetime) -> IncidentSummary:
    return _get_or_add(session, incident, now)[0]


def _get_or_add(session: Session, incident, now: datetime) -> tuple[IncidentSummary, bool]:
    row = find(session=session, incident_id=incident.id)
    if row is not None:
        return row, False
    row = IncidentSummary(org_id=incident.org_id, incident_id=incident.id, status="queued", requested_at=now)
    try:
        with session.begin_nested():  # why: two requests may race to create the one row per incident
            session.add(row)
    except IntegrityError:
        return find(session=session, incident_id=incident.id), False
    return row, True


def evidence_changed(*, session: Session, incidents: list[Incident], now: datetime) -> None:
    """Queue a refresh of the open incidents' summaries, once per incident and transaction (an incidents hook)."""
    asked = db.memo(session).setdefault("summary_refresh_requested", set())
    # why: a delivery of many alerts asks once per incident and transaction, not once per alert
    todo = [incident for incident in incidents if incident.status == "open" and incident.id not in asked]
    if not todo:
        return
    request_refreshes(session=session, incidents=todo, now=now)
    asked.update(incident.id for incident in todo)


def request_refresh(*, session: Session, incident, now: datetime) -> None:
    """Queue a summary refresh after this transaction commits, unless one is already pending (debounce)."""
    row, created = _get_or_add(session, incident, now)
    _queue(session, row, created, incident.id, now)


def request_refreshes(*, session: Session, incidents: list, now: datetime) -> None:
    """request_refresh for several incidents, reading their summary rows in one query."""
    ids = sorted({incident.id for incident in incidents})
    rows = {row.incident_id: row for row in
            session.scalars(select(IncidentSummary).where(IncidentSummary.incident_id.in_(ids)))} if ids else {}
    for incident in {incident.id: incident for incident in incidents}.values():
        row = rows.get(incident.id)
        if row is None:
            request_refresh(session=session, incident=incident, now=now)
        else:
            _queue(session, row, False, incident.id, now)


def pending(row: IncidentSummary, now: datetime) -> bool:
    """Tell whether a refresh of this row is on its way: queued and not long overdue, or being built by a live worker."""
    if row.requested_at is None:
        return False
    if row.status == "queued":
        return now - row.requested_at < STALE_QUEUED
    if row.status == "building":
        return now - row.requested_at < STALE_BUILDING
    return False


def _queue(session: Session, row: IncidentSummary, created: bool, incident_id: int, now: datetime) -> None:
    if pending(row, now) and not created:
        # a refresh is on its way; a build re-queues itself if evidence moved while it ran, and a queued one has
        # not read the evidence yet
        return
    if any(task == TASK and args == (incident_id,) for task, args in session.info.get("deferred", [])):
        return
    _requeue(session, row, incident_id, now)


def _requeue(session: Session, row: IncidentSummary, incident_id: int, now: datetime) -> None:
    row.status, row.requested_at = "queued", now
    db.defer(session, TASK, incident_id)


def revive(*, session: Session, incident_id: int, now: datetime) -> bool:
    """Re-queue the incident's refresh if its job was lost (queued or building long past due); tell whether it did."""
    row = find(session=session, incident_id=incident_id)
    if row is None or row.status not in PENDING or pending(row, now):
        return False
    log.warning("live summary of incident %s was %s since %s with no result; queued again", incident_id, row.status,
                row.requested_at)
    _requeue(session, row, incident_id, now)
    return True


def sweep(*, session: Session, now: datetime) -> list[int]:
    """Re-queue every refresh whose job was lost (queued or building long past due); return the incident ids."""
    # why: one UPDATE … RETURNING, so a build finishing between a SELECT and the UPDATE is never turned back
    lost = or_((IncidentSummary.status == "queued") & (IncidentSummary.requested_at < now - STALE_QUEUED),
               (IncidentSummary.status == "building") & (IncidentSummary.requested_at < now - STALE_BUILDING))
    ids = list(session.execute(
        update(IncidentSummary).where(lost).values(status="queued", requested_at=now)
        .returning(IncidentSummary.incident_id).execution_options(synchronize_session=False)).scalars())
    session.flush()
    return sorted(ids)


@dataclass(frozen=True)
class Claim:
    """What a refresh job does: "build" now (the row is marked building), "wait" this long (the row stays queued,
    due then) or "skip" (nothing is pending, or another worker is building it)."""

    action: str
    wait: timedelta = timedelta(0)
    observations: dict | None = None  # the connector findings cached on the row, and when they were fetched
    observed_at: datetime | None = None


def claim(*, session: Session, incident, now: datetime, min_interval: timedelta) -> Claim:
    """Claim the incident's pending refresh for this job, or say how long to wait for the minimum interval to end."""
    row = _row(session, incident, now)
    if row.status == "building" and pending(row, now):
        return Claim("skip")  # why: that build re-queues itself if evidence moved while it ran
    if row.status not in PENDING:
        return Claim("skip")  # a duplicate of a job that already ran (a sweep racing a slow queue)
    if row.status == "queued" and row.generated_at is not None:
        # why: at most one rebuild per interval; what arrives meanwhile is gathered into the next one
        wait = min(row.generated_at + min_interval - now, min_interval)
        if wait > timedelta(0):
            row.requested_at = now + wait
            return Claim("wait", wait=wait)
    row.status, row.requested_at = "building", now
    return Claim("build", observations=row.observations, observed_at=row.observed_at)


def engine_allowed(session: Session, incident, choose) -> Engine | None:
    """Return the organization's engine (`choose(session, org_id)`) if it has AI turned on, else None (built-in)."""
    org = session.get(Organization, incident.org_id)
    return choose(session, incident.org_id) if org is not None and org.ai_enabled else None


def store(session: Session, incident, content: dict, label: str, error: str | None, version: str,
          now: datetime, *, observed: tuple[dict | None, datetime] | None = None) -> IncidentSummary:
    """Store a rebuilt summary on the incident's row, marked ready; `observed` replaces the cached connector findings."""
    row = _row(session, incident, now)
    row.status, row.content, row.engine = "ready", content, db.fit(IncidentSummary.engine, label)
    row.error = db.fit(IncidentSummary.error, error, limit=4_000)
    row.evidence_version, row.generated_at = version, now
    if observed is not None:
        row.observations, row.observed_at = observed[0], observed[1] if observed[0] is not None else None
    return row


def postpone(row: IncidentSummary, due: datetime) -> None:
    """Mark the row queued again, due at `due` (evidence moved while it was built)."""
    row.status, row.requested_at = "queued", due


def fail(session: Session, incident, error: str, now: datetime) -> None:
    """Mark the build failed with its reason, keeping the last summary (new evidence asks again)."""
    row = _row(session, incident, now)
    row.status, row.error = "failed", db.fit(IncidentSummary.error, error, limit=4_000)


def evidence_marker(session: Session, incident) -> tuple:
    """Return what changes whenever the incident's evidence may have (cheap: no evidence pack is built)."""
    last_entry = session.scalar(select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident.id))
    last_deploy = session.scalar(select(func.max(Deploy.id)).where(Deploy.org_id == incident.org_id))
    return incident.status, incident.updated_at, last_entry, last_deploy


def to_read(row: IncidentSummary | None, *, fallback: dict | None = None) -> dict:
    """Return the read shape: {status, generated_at, engine, content, error} (the API's), plus for the page
    `requested_at` (of a pending refresh), `observed_at` (metrics and logs fetched) and `live` (computed now)."""
    if row is None:
        return {"status": "ready" if fallback is not None else "none", "generated_at": None,
                "engine": "builtin" if fallback is not None else None, "content": fallback, "error": None,
                "requested_at": None, "observed_at": None, "live": fallback is not None}
    return {"status": row.status, "generated_at": row.generated_at, "engine": row.engine, "content": row.content,
            "error": row.error, "requested_at": row.requested_at if row.status in PENDING else None,
            "observed_at": row.observed_at, "live": False}
