"""Incidents: create, list, read, post updates, resolve, and the merged timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, lazyload

from blametrail import db
from blametrail.analysis import ids
from blametrail.clock import iso
from blametrail.deploys.models import Deploy
from blametrail.errors import InvalidState, NotFound, ValidationFailed
from blametrail.incidents import hooks
from blametrail.incidents.models import (
    Incident,
    IncidentService,
    TimelineEntry,
    evidence_id,
)
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.orgs.service import Actor
from blametrail.outbound import service as outbound

MAX_PAGE = 200


def flush_entries(*, session: Session, now: datetime) -> None:
    """Write the entries added with add_entry(flush=False) or stage_entry(), then fire the evidence-changed hook once
    for the batch."""
    memo = db.memo(session)
    pending = memo.pop("entries_pending", {})
    staged = memo.pop("entries_staged", [])
    session.flush()
    if staged:
        db.refuse_unstorable_rows(TimelineEntry, staged)
        session.execute(insert(TimelineEntry), staged)  # why: one executemany, not a flush's INSERT per row
    hooks.evidence_changed(session, list(pending.values()), now)


def stage_entry(
    *, session: Session, incident: Incident, kind: str, at: datetime, body: str, now: datetime,
    author: str | None = None, data: dict | None = None,
) -> None:
    """Add a system entry that nothing reads back in this transaction and search does not index (an alert's
    transition): written by the next flush_entries() in one statement with the others staged."""
    if kind == "update":
        raise ValueError("updates are indexed for search: use add_entry")
    db.memo(session).setdefault("entries_staged", []).append({
        "org_id": incident.org_id, "incident_id": incident.id, "kind": kind, "at": at, "body": _fit_body(body),
        "status": None, "author_user_id": None, "author": author, "data": data, "created_at": now})
    incident.updated_at = now
    db.memo(session).setdefault("entries_pending", {})[incident.id] = incident


def _emit(session: Session, incident: Incident, event: str, now: datetime) -> None:
    """Tell the organization's outbound webhooks (a delivery per subscribed endpoint, sent after the commit)."""
    outbound.emit(session=session, org_id=incident.org_id, event_type=event, now=now, data={
        "incident_id": incident.id, "title": incident.title, "status": incident.status, "severity": incident.severity,
        "services": sorted(s.service for s in incident.services), "started_at": iso(incident.started_at),
        "resolved_at": iso(incident.resolved_at), "resolved_by": incident.resolved_by, "source": incident.source})


def duration_minutes(incident: Incident) -> int | None:
    """Return resolved_at − started_at in whole minutes (half up), or None while open."""
    if incident.resolved_at is None:
        return None
    seconds = (incident.resolved_at - incident.started_at).total_seconds()
    return max(0, int(seconds / 60 + 0.5))


def get_or_404(*, session: Session, org_id: int, incident_id: int) -> Incident:
    """Return the organization's incident or raise NotFound (other organizations' ids included)."""
    incident = session.scalar(select(Incident).where(Incident.id == incident_id, Incident.org_id == org_id))
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found.")
    return incident


def create(*, session: Session, actor: Actor, data: IncidentCreate, now: datetime) -> Incident:
    """Open an incident and record the opening on its timeline."""
    started = data.started_at or now
    if started > now + timedelta(minutes=5):
        raise ValidationFailed("started_at is in the future.", [{"loc": ["started_at"], "msg": "in the future"}])
    incident = Incident(
        org_id=actor.org_id, title=data.title, description=data.description, severity=data.severity,
        status="open", started_at=started, created_by_user_id=actor.user_id, created_at=now, updated_at=now,
        services=[IncidentService(service=s) for s in data.services],
    )
    session.add(incident)
    session.flush()
    detail = f"Incident opened by {actor.label}" + (f" ({data.severity})" if data.severity else "")
    session.add(TimelineEntry(org_id=actor.org_id, incident_id=incident.id, kind="status", status="open", at=started,
                              body=detail, author_user_id=actor.user_id, author=actor.label, created_at=now))
    session.flush()
    hooks.evidence_changed(session, [incident], now)
    _emit(session, incident, "incident.opened", now)
    return incident


def open_system(
    *, session: Session, org_id: int, title: str, severity: str | None, services: list[str], started_at: datetime,
    source: str, source_ref: str, opened_by: str, now: datetime, description: str = "", data: dict | None = None,
) -> Incident:
    """Open an incident on behalf of a system (a monitor or an alert source) and record the opening."""
    incident = Incident(
        org_id=org_id, title=title[:300], description=description, severity=severity, status="open",
        started_at=started_at, created_by_user_id=None, created_at=now, updated_at=now, source=source,
        source_ref=source_ref, services=[IncidentService(service=s) for s in sorted({s for s in services if s})],
    )
    session.add(incident)
    session.flush()
    session.add(TimelineEntry(org_id=org_id, incident_id=incident.id, kind="status", status="open", at=started_at,
                              body=f"Incident opened by {opened_by}" + (f" ({severity})" if severity else ""),
                              author=opened_by, data=data, created_at=now))
    session.flush()
    hooks.evidence_changed(session, [incident], now)
    _emit(session, incident, "incident.opened", now)
    return incident


MAX_BODY = 20_000


def _fit_body(body: str) -> str:
    """Return a system entry's body within MAX_BODY, saying how much was cut (people's updates are refused instead)."""
    if len(body) <= MAX_BODY:
        return body
    note = f" … [{len(body) - MAX_BODY + 80:,} more characters cut]"
    return body[:MAX_BODY - 80] + note


def add_entry(
    *, session: Session, incident: Incident, kind: str, at: datetime, body: str, now: datetime,
    author: str | None = None, data: dict | None = None, flush: bool = True,
) -> TimelineEntry:
    """Add a system timeline entry (kind "monitor" or "alert") with its structured evidence.

    flush=False leaves the INSERT and the evidence-changed hook to a later flush_entries(), so many entries go to the
    database in one batch.
    """
    entry = TimelineEntry(org_id=incident.org_id, incident_id=incident.id, kind=kind, at=at, body=_fit_body(body),
                          author=author, data=data, created_at=now)
    session.add(entry)
    incident.updated_at = now
    if not flush:
        db.memo(session).setdefault("entries_pending", {})[incident.id] = incident
        return entry
    session.flush()
    hooks.evidence_changed(session, [incident], now)
    return entry


def find_open_for_service(*, session: Session, org_id: int, service: str) -> Incident | None:
    """Return the newest open incident affecting a service, if any."""
    return session.scalar(
        select(Incident).where(Incident.org_id == org_id, Incident.status == "open",
                               Incident.id.in_(select(IncidentService.incident_id).where(IncidentService.service == service)))
        .order_by(Incident.id.desc()).limit(1)
        .options(lazyload(Incident.services))  # why: hot on the alert path, which rarely reads the services
    )


def list_incidents(
    *, session: Session, org_id: int, status: str | None = None, service: str | None = None,
    severity: str | None = None, q: str | None = None, limit: int = 50, cursor: str | None = None,
) -> tuple[list[Incident], str | None]:
    """Return a page of incidents, newest first, and the cursor of the next page."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Incident).where(Incident.org_id == org_id)
    if status:
        if status not in ("open", "resolved"):
            raise ValidationFailed("status must be open or resolved.", [{"loc": ["status"], "msg": "open|resolved"}])
        query = query.where(Incident.status == status)
    if service:
        query = query.where(Incident.id.in_(select(IncidentService.incident_id).where(IncidentService.service == service)))
    if severity:
        query = query.where(Incident.severity == severity)
    if q:
        query = query.where(Incident.title.ilike(f"%{q.strip()}%"))
    if cursor:
        try:
            before = int(cursor)
            if not 1 <= before <= db.MAX_INT:  # why: a larger number is an out-of-range error on PostgreSQL
                raise ValueError(cursor)
        except ValueError as exc:
            raise ValidationFailed("Invalid cursor.", [{"loc": ["cursor"], "msg": "not a cursor"}]) from exc
        query = query.where(Incident.id < before)
    rows = list(session.scalars(query.order_by(Incident.id.desc()).limit(limit + 1)))
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def add_update(*, session: Session, actor: Actor, incident: Incident, data: UpdateCreate, now: datetime) -> TimelineEntry:
    """Post a human update; `at` may back-fill history but never lies in the future."""
    at = data.at or now
    if at > now:
        raise ValidationFailed("An update cannot be dated in the future.", [{"loc": ["at"], "msg": "in the future"}])
    entry = TimelineEntry(org_id=incident.org_id, incident_id=incident.id, kind="update", at=at, body=data.body,
                          author_user_id=actor.user_id, author=actor.label, created_at=now)
    session.add(entry)
    incident.updated_at = now
    session.flush()
    hooks.evidence_changed(session, [incident], now)
    return entry


def resolve(
    *, session: Session, incident: Incident, now: datetime, resolved_at: datetime | None, by_label: str,
    by_user_id: int | None,
) -> Incident:
    """Resolve an open incident exactly once (atomic), record it, and fire the resolved hook."""
    at = resolved_at or now
    if at > now:
        raise ValidationFailed("resolved_at is in the future.", [{"loc": ["resolved_at"], "msg": "in the future"}])
    if at < incident.started_at:
        raise ValidationFailed("resolved_at is before the incident started.",
                               [{"loc": ["resolved_at"], "msg": "before started_at"}])
    result = session.execute(
        update(Incident)
        .where(Incident.id == incident.id, Incident.status == "open")
        .values(status="resolved", resolved_at=at, resolved_by=by_label, resolved_by_user_id=by_user_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(incident)
        raise InvalidState(f"Incident {incident.id} is already resolved (by {incident.resolved_by}).")
    session.refresh(incident)
    session.add(TimelineEntry(org_id=incident.org_id, incident_id=incident.id, kind="status", status="resolved", at=at,
                              body=f"Resolved by {by_label}", author_user_id=by_user_id, author=by_label, created_at=now))
    session.flush()
    _emit(session, incident, "incident.resolved", now)
    hooks.resolved(session, incident, now)
    return incident


def window(incident: Incident, *, lookback_minutes: int, now: datetime) -> tuple[datetime, datetime]:
    """Return the evidence window [started_at − lookback, resolved_at or now]."""
    return incident.started_at - timedelta(minutes=lookback_minutes), incident.resolved_at or now


def entries(*, session: Session, incident: Incident) -> list[TimelineEntry]:
    """Return the incident's own timeline entries in time order."""
    return list(session.scalars(
        select(TimelineEntry).where(TimelineEntry.incident_id == incident.id).order_by(TimelineEntry.at, TimelineEntry.id)
    ))


def deploys_in_window(*, session: Session, incident: Incident, start: datetime, end: datetime) -> list[Deploy]:
    """Return deploys of the incident's services inside the window, oldest first."""
    services = incident.service_names
    if not services:
        return []
    return list(session.scalars(
        select(Deploy).where(Deploy.org_id == incident.org_id, Deploy.service.in_(services),
                             Deploy.deployed_at >= start, Deploy.deployed_at <= end)
        .order_by(Deploy.deployed_at, Deploy.id)
    ))


def timeline(*, session: Session, incident: Incident, lookback_minutes: int, now: datetime) -> list[dict]:
    """Return the merged timeline: status changes, updates, monitor and alert events, deploys of its services."""
    start, end = window(incident, lookback_minutes=lookback_minutes, now=now)
    items: list[dict] = []
    for e in entries(session=session, incident=incident):
        data = dict(e.data or {})
        if e.status:
            data.setdefault("status", e.status)
        items.append({"evidence_id": evidence_id(e), "at": e.at, "source": e.kind, "description": e.body,
                      "author": e.author, "data": data})
    for d in deploys_in_window(session=session, incident=incident, start=start, end=end):
        items.append({
            "evidence_id": ids.deploy_id(d.id), "at": d.deployed_at, "source": "deploy",
            "description": f"Deploy of {d.service} {d.version} to {d.environment} ({len(d.commits)} commits)",
            "author": None,
            "data": {"service": d.service, "version": d.version, "environment": d.environment,
                     "commits": [{"evidence_id": ids.commit_id(c.id), "sha": c.sha, "author": c.author,
                                  "message": c.message, "files": c.files} for c in d.commits]},
        })
    items.sort(key=lambda i: i["at"])  # stable: same-time entries keep their recorded order
    return items
