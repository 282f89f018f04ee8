"""Alerts: ingest normalized alerts (dedupe, firing/resolved, attach or open incidents, auto-resolve) and list them.

Identity and deduplication
    An alert instance is (webhook, fingerprint, starts_at). The same firing instance delivered again changes
    nothing; a resolved one marks the instance resolved with its ends_at, once. An alert without starts_at (the
    generic shape allows it) is the latest still-firing instance of its fingerprint, else a new instance starting
    now. When a new instance of a fingerprint fires while an older one is still recorded as firing (its resolve
    notification was lost), the older one is closed at the new start, silently.

Incidents
    A firing alert joins the newest open incident of its service (incidents.find_open_for_service); without a
    service, the newest open service-less incident this webhook opened. If there is none and the webhook's
    `open_incidents` is on, it opens one (title = summary or name, severity, services = [service],
    started_at = starts_at, source "alert", source_ref "webhook:<id>", opened by "alert:<name>").
    A resolved alert never seen firing is stored and joins an open incident of its service if one exists; it never
    opens one. When the webhook's `auto_resolve` is on and every alert attached to an incident is resolved, the
    incident resolves at the latest ends_at (clamped to [started_at, now]) by "alert:<webhook name>", which
    auto-triggers its postmortem.

Timeline data contract (TimelineEntry kind "alert", one per transition; evidence id "alert_<entry id>")
    at    firing: starts_at; resolved: ends_at (or the time it was received)
    body  "Alert <name> firing on <service>: <summary>" / "Alert <name> resolved on <service>"
    data  {"alert_id": int, "name": str, "status": "firing"|"resolved", "service": str|None,
           "severity": "SEV-1".."SEV-4"|None, "summary": str, "fingerprint": str, "labels": {str: str},
           "starts_at": ISO-8601 Z, "ends_at": ISO-8601 Z|None, "source": "alertmanager"|"grafana"|"generic",
           "url": str|None}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.orm import Session, lazyload

from blametrail import db
from blametrail.alerts.models import Alert
from blametrail.alerts.parsers import NormalizedAlert
from blametrail.clock import as_utc, iso
from blametrail.errors import InvalidState, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident, IncidentService
from blametrail.orgs.models import Organization
from blametrail.postmortems import service as postmortems
from blametrail.webhooks.models import Webhook

MAX_PAGE = 200


@dataclass
class IngestSummary:
    """What one delivery changed."""

    received: int = 0
    created: int = 0
    fired: int = 0  # firing transitions recorded
    resolved: int = 0  # resolved transitions recorded
    unchanged: int = 0  # repeats of what we already knew
    incidents_opened: list[int] = field(default_factory=list)
    incidents_updated: list[int] = field(default_factory=list)
    incidents_resolved: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the JSON shape returned to senders."""
        return {"received": self.received, "created": self.created, "firing": self.fired, "resolved": self.resolved,
                "unchanged": self.unchanged, "incidents_opened": self.incidents_opened,
                "incidents_updated": self.incidents_updated, "incidents_resolved": self.incidents_resolved}


def describe(alerts: list[NormalizedAlert]) -> str:
    """Return a one-line summary of a delivery's content (stored with the delivery)."""
    firing = sum(1 for a in alerts if a.status == "firing")
    names = sorted({a.name for a in alerts})
    shown = ", ".join(names[:5]) + (f" +{len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(alerts)} alert(s): {firing} firing, {len(alerts) - firing} resolved" + (f" ({shown})" if names else "")


def _prefetch(session: Session, hook: Webhook, alerts: list[NormalizedAlert]) -> dict[str, list[Alert]]:
    """Load, in one query per 500 fingerprints, the instances a delivery may refer to: same start, or still firing."""
    fingerprints = sorted({a.fingerprint for a in alerts})
    starts = sorted({a.starts_at for a in alerts if a.starts_at is not None})
    known: dict[str, list[Alert]] = {fp: [] for fp in fingerprints}
    for i in range(0, len(fingerprints), 500):
        chunk = fingerprints[i:i + 500]
        match = Alert.status == "firing"
        if starts and len(starts) <= 500:
            match = or_(match, Alert.starts_at.in_(starts))
        elif starts:  # why: a huge batch of distinct starts: fetch every instance of these fingerprints instead
            match = Alert.id.is_not(None)
        for row in session.scalars(select(Alert).where(Alert.webhook_id == hook.id, Alert.fingerprint.in_(chunk), match)):
            known[row.fingerprint].append(row)
    return known


def _lookup(session: Session, hook: Webhook, a: NormalizedAlert,
            known: dict[str, list[Alert]]) -> tuple[Alert | None, list[Alert]]:
    """Return the instance this alert is (or None) and older instances of its fingerprint still firing."""
    rows = known.get(a.fingerprint, [])
    if a.starts_at is not None:
        found = next((r for r in rows if r.starts_at == a.starts_at), None)
        return found, [r for r in rows if r.status == "firing" and r.starts_at < a.starts_at]
    firing = [r for r in rows if r.status == "firing"]
    if firing:
        return max(firing, key=lambda r: (r.starts_at, r.id or 0)), []
    if a.status == "resolved":  # why: the latest instance whatever its status; not covered by the prefetch
        return session.scalar(select(Alert).where(Alert.webhook_id == hook.id, Alert.fingerprint == a.fingerprint)
                              .order_by(Alert.starts_at.desc(), Alert.id.desc()).limit(1)), []
    return None, []


def _new_row(hook: Webhook, a: NormalizedAlert, now: datetime) -> Alert:
    """Build (not add) the row of a new alert instance."""
    starts = a.starts_at or (a.ends_at if a.status == "resolved" and a.ends_at else now)
    ends = (a.ends_at or now) if a.status == "resolved" else None
    return Alert(org_id=hook.org_id, webhook_id=hook.id, fingerprint=a.fingerprint, status=a.status, name=a.name,
                 service=a.service, severity=a.severity, summary=a.summary, labels=a.labels, annotations=a.annotations,
                 generator_url=a.url, starts_at=starts, ends_at=max(ends, starts) if ends else None,
                 created_at=now, updated_at=now)


def _insert_all(session: Session, hook: Webhook, rows: list[Alert]) -> list[tuple[Alert, bool]]:
    """Insert new instances (built by _new_row, distinct fingerprints) in one statement; return (row, created), where
    an instance a concurrent delivery stored first comes back as that delivery's row with created=False."""
    if not rows:
        return []
    values = [{attr.key: getattr(row, attr.key) for attr in _ALERT_COLUMNS} for row in rows]
    db.refuse_unstorable_rows(Alert, values)
    # why: one multi-row INSERT … RETURNING (the ORM's flush inserts row by row on SQLite), and no savepoint: an
    # instance stored meanwhile by another transaction is skipped here and read below
    statement = (db.dialect_insert(session, Alert)
                 .on_conflict_do_nothing(index_elements=["webhook_id", "fingerprint", "starts_at"]).returning(Alert))
    stored = {(row.fingerprint, as_utc(row.starts_at)): row for row in session.scalars(statement, values)}
    missing = [row for row in rows if (row.fingerprint, as_utc(row.starts_at)) not in stored]
    existing = {}
    if missing:
        existing = {(row.fingerprint, as_utc(row.starts_at)): row for row in session.scalars(select(Alert).where(
            Alert.webhook_id == hook.id, Alert.fingerprint.in_({row.fingerprint for row in missing})))}
    out = []
    for row in rows:
        key = (row.fingerprint, as_utc(row.starts_at))
        if key in stored:
            out.append((stored[key], True))
        elif key in existing:
            out.append((existing[key], False))
        else:
            raise RuntimeError(f"alert {row.fingerprint} starting {row.starts_at} was neither stored nor found")
    return out


_ALERT_COLUMNS = [attr for attr in inspect(Alert).column_attrs if attr.key != "id"]


def _close_superseded(older: list[Alert], row: Alert, now: datetime) -> None:
    """Close older instances of the fingerprint still recorded as firing (their resolve notification was lost)."""
    for old in older:
        if old.starts_at < row.starts_at:
            old.status, old.ends_at, old.updated_at = "resolved", row.starts_at, now


def _entry_data(row: Alert, source: str) -> dict:
    return {"alert_id": row.id, "name": row.name, "status": row.status, "service": row.service,
            "severity": row.severity, "summary": row.summary, "fingerprint": row.fingerprint,
            "labels": dict(row.labels or {}), "starts_at": iso(row.starts_at), "ends_at": iso(row.ends_at),
            "source": source, "url": row.generator_url}


def _record(session: Session, incident: Incident, row: Alert, source: str, now: datetime) -> None:
    on = f" on {row.service}" if row.service else ""
    if row.status == "firing":
        body, at = f"Alert {row.name} firing{on}" + (f": {row.summary}" if row.summary else ""), row.starts_at
    else:
        body, at = f"Alert {row.name} resolved{on}", row.ends_at or now
    incidents.stage_entry(session=session, incident=incident, kind="alert", at=at, body=body, now=now,
                          author=f"alert:{row.name}", data=_entry_data(row, source))


def _open_incident_for(session: Session, hook: Webhook, service: str | None) -> Incident | None:
    if service:
        return incidents.find_open_for_service(session=session, org_id=hook.org_id, service=service)
    return session.scalar(
        select(Incident).where(Incident.org_id == hook.org_id, Incident.status == "open", Incident.source == "alert",
                               Incident.source_ref == f"webhook:{hook.id}",
                               ~Incident.id.in_(select(IncidentService.incident_id)))
        .order_by(Incident.id.desc()).limit(1))


def _touched(summary: IngestSummary, incident_id: int) -> None:
    if incident_id not in summary.incidents_opened and incident_id not in summary.incidents_updated:
        summary.incidents_updated.append(incident_id)


def _open_for(session: Session, hook: Webhook, row: Alert, now: datetime, summary: IngestSummary) -> Incident | None:
    """Open an incident for a firing alert that found none (if the webhook opens incidents)."""
    if not hook.open_incidents:
        return None
    # why: serialize openings per organization (PostgreSQL) so two deliveries for one service open one incident.
    # NO KEY UPDATE, not UPDATE: our own inserts hold KEY SHARE on this row (foreign keys), and two deliveries
    # each holding KEY SHARE while waiting for UPDATE would deadlock.
    session.execute(select(Organization.id).where(Organization.id == hook.org_id).with_for_update(key_share=True))
    incident = _open_incident_for(session, hook, row.service)
    if incident is None:
        incident = incidents.open_system(
            session=session, org_id=hook.org_id, title=row.summary or row.name, severity=row.severity,
            services=[row.service] if row.service else [], started_at=row.starts_at, source="alert",
            source_ref=f"webhook:{hook.id}", opened_by=f"alert:{row.name}", now=now)
        summary.incidents_opened.append(incident.id)
    return incident


def _auto_resolve(session: Session, hook: Webhook, incident_id: int, now: datetime, summary: IngestSummary) -> None:
    incident = session.get(Incident, incident_id)
    if incident is None or incident.status != "open":
        return
    firing = session.scalar(select(func.count(Alert.id)).where(Alert.incident_id == incident_id, Alert.status == "firing"))
    if firing:
        return
    latest = session.scalar(select(func.max(Alert.ends_at)).where(Alert.incident_id == incident_id)) or now
    at = max(min(latest, now), incident.started_at)
    try:
        postmortems.resolve_incident(session=session, incident=incident, now=now, resolved_at=at,
                                     by_label=f"alert:{hook.name}", by_user_id=None)
    except (InvalidState, ValidationFailed):  # why: resolved meanwhile, or the sender's clock runs ahead of ours
        return
    summary.incidents_resolved.append(incident_id)


class _OpenIncidents:
    """The open incident per service, read for a whole delivery in one query (a storm repeats a few services)."""

    def __init__(self, session: Session, hook: Webhook, services: set[str | None]) -> None:
        self._session, self._hook = session, hook
        self._by_service: dict[str | None, Incident | None] = {}
        named = sorted(s for s in services if s)
        if named:
            rows = session.execute(
                select(Incident, IncidentService.service).join(IncidentService, IncidentService.incident_id == Incident.id)
                .where(Incident.org_id == hook.org_id, Incident.status == "open", IncidentService.service.in_(named))
                .order_by(Incident.id.desc()).options(lazyload(Incident.services)))
            for incident, service in rows:
                self._by_service.setdefault(service, incident)
            for service in named:
                self._by_service.setdefault(service, None)

    def get(self, service: str | None) -> Incident | None:
        if service not in self._by_service:
            self._by_service[service] = _open_incident_for(self._session, self._hook, service)
        return self._by_service[service]

    def opened(self, service: str | None, incident: Incident | None) -> None:
        self._by_service[service] = incident


Owned = tuple[NormalizedAlert, IngestSummary]  # an alert and the summary of the delivery that carried it


def _waves(alerts: list[Owned]) -> list[list[Owned]]:
    """Split deliveries so no fingerprint repeats within a wave (the k-th mention of each goes to wave k)."""
    seen: dict[str, int] = {}
    waves: list[list[Owned]] = []
    for item in alerts:
        k = seen.get(item[0].fingerprint, 0)
        seen[item[0].fingerprint] = k + 1
        if k == len(waves):
            waves.append([])
        waves[k].append(item)
    return waves


def _incidents_by_id(session: Session, ids: set[int]) -> dict[int, Incident]:
    if not ids:
        return {}
    rows = session.scalars(select(Incident).where(Incident.id.in_(sorted(ids))).options(lazyload(Incident.services)))
    return {incident.id: incident for incident in rows}


def _resolves(row: Alert, a: NormalizedAlert, now: datetime) -> bool:
    """Apply a resolved notification to a firing instance; False when it changes nothing."""
    if row.status != "firing" or a.status != "resolved":
        return False
    row.status, row.ends_at, row.updated_at = "resolved", max(a.ends_at or now, row.starts_at), now
    return True


def _ingest_wave(session: Session, hook: Webhook, wave: list[Owned], now: datetime, *,
                 known: dict[str, list[Alert]], open_incidents: _OpenIncidents,
                 to_check: list[tuple[int, IngestSummary]]) -> None:
    """Apply alerts with distinct fingerprints: batch-insert the new instances, then record every transition."""
    fresh: list[tuple[NormalizedAlert, IngestSummary, Alert, list[Alert], Incident | None]] = []
    resolved: list[tuple[NormalizedAlert, IngestSummary, Alert]] = []
    for a, summary in wave:
        row, older = _lookup(session, hook, a, known)
        if row is None:
            # why: look for the incident before inserting, so a joining alert is inserted with it (no extra UPDATE)
            incident = open_incidents.get(a.service) if a.status == "firing" or a.service else None
            row = _new_row(hook, a, now)
            row.incident_id = incident.id if incident else None
            fresh.append((a, summary, row, older, incident))
        elif _resolves(row, a, now):
            resolved.append((a, summary, row))
        else:
            summary.unchanged += 1
    inserted = _insert_all(session, hook, [row for _, _, row, _, _ in fresh])
    for (a, summary, _, older, incident), (row, created) in zip(fresh, inserted, strict=True):
        known.setdefault(a.fingerprint, []).append(row)
        if not created:  # a concurrent delivery stored this instance first: apply this one as a repeat of it
            if _resolves(row, a, now):
                resolved.append((a, summary, row))
            else:
                summary.unchanged += 1
            continue
        summary.created += 1
        if row.status == "firing":
            _close_superseded(older, row, now)
            if incident is None:  # another alert of this wave may have opened the service's incident already
                incident = open_incidents.get(row.service) or _open_for(session, hook, row, now, summary)
                if incident is not None:
                    open_incidents.opened(row.service, incident)
                row.incident_id = incident.id if incident else None
            summary.fired += 1
        else:
            summary.resolved += 1
            if incident is not None:
                to_check.append((incident.id, summary))
        if incident is not None:
            _touched(summary, incident.id)
            _record(session, incident, row, a.source, now)
    attached = _incidents_by_id(session, {row.incident_id for _, _, row in resolved if row.incident_id is not None})
    for a, summary, row in resolved:
        summary.resolved += 1
        incident = attached.get(row.incident_id)
        if incident is not None:
            _record(session, incident, row, a.source, now)
            _touched(summary, incident.id)
            to_check.append((incident.id, summary))
    incidents.flush_entries(session=session, now=now)


def ingest(*, session: Session, hook: Webhook, alerts: list[NormalizedAlert], now: datetime) -> IngestSummary:
    """Apply one delivery's alerts: dedupe, record transitions on incidents, open or resolve incidents."""
    return ingest_many(session=session, hook=hook, deliveries=[alerts], now=now)[0]


def ingest_many(*, session: Session, hook: Webhook, deliveries: list[list[NormalizedAlert]],
                now: datetime) -> list[IngestSummary]:
    """Apply several deliveries of one webhook, in order, with the reads and writes of all of them batched; return
    each delivery's summary. The incidents their resolutions may have emptied are checked once, at the end (as if
    the deliveries that fired arrived before those that resolved), and one resolved that way is counted by the
    last delivery that resolved one of its alerts."""
    summaries = [IngestSummary(received=len(alerts)) for alerts in deliveries]
    owned = [(a, summary) for alerts, summary in zip(deliveries, summaries, strict=True) for a in alerts]
    to_check: list[tuple[int, IngestSummary]] = []
    everything = [a for a, _ in owned]
    known = _prefetch(session, hook, everything)
    open_incidents = _OpenIncidents(session, hook, {a.service for a in everything if a.status == "firing" or a.service})
    for wave in _waves(owned):
        _ingest_wave(session, hook, wave, now, known=known, open_incidents=open_incidents, to_check=to_check)
    if hook.auto_resolve:
        last = dict(to_check)  # incident id → the last delivery that resolved one of its alerts
        for incident_id, summary in last.items():
            _auto_resolve(session, hook, incident_id, now, summary)
    return summaries


def list_alerts(
    *, session: Session, org_id: int, status: str | None = None, incident_id: int | None = None,
    webhook_id: int | None = None, limit: int = 50,
) -> list[Alert]:
    """Return the organization's alerts, newest first, optionally filtered."""
    query = select(Alert).where(Alert.org_id == org_id)
    if status:
        if status not in ("firing", "resolved"):
            raise ValidationFailed("status must be firing or resolved.", [{"loc": ["status"], "msg": "firing|resolved"}])
        query = query.where(Alert.status == status)
    if incident_id is not None:
        query = query.where(Alert.incident_id == incident_id)
    if webhook_id is not None:
        query = query.where(Alert.webhook_id == webhook_id)
    return list(session.scalars(query.order_by(Alert.id.desc()).limit(max(1, min(limit, MAX_PAGE)))))
