"""The live incident summary: its stored row, the debounced refresh request, and rebuilding it.

The summary is rebuilt from the same evidence pack as the postmortem (evidence.pack.build_pack) whenever evidence
arrives on an open incident: the incidents service fires its hooks, which the composition root wires to
`evidence_changed` and `request_refresh`; these defer the `refresh_summary` job unless one is already queued
(debounce). The job uses the engine's `summarize(pack)` when the organization has AI turned on and grounds the
answer; on any error, or when the organization has AI turned off, it writes the built-in summary, which is pure
and deterministic.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
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
STALE_QUEUED = timedelta(minutes=2)  # a request queued longer than this is presumed lost and re-deferred
__all__ = ["TASK", "SummaryOut", "evidence_changed", "find", "request_refresh", "request_refreshes",
           "summarize_with", "to_read", "write_summary"]


def summarize_with(engine: Engine | None, pack: EvidencePack) -> tuple[dict, str, str | None]:
    """Summarise with the engine (None: AI is off, the built-in writer); return (content, engine label, error)."""
    if engine is None:
        return write_summary(pack), "builtin", None
    try:
        # why: grounded here too, whatever the engine: the page shows only what the evidence supports
        return ground_summary(engine.summarize(pack).content, pack), engine.label, None
    except Exception as exc:  # why: the team always gets a summary; the reason is kept for the page
        log.warning("summary with %s failed: %s", engine.label, exc)
        return write_summary(pack), "builtin", f"{engine.label} failed: {exc}. This is the built-in summary instead."


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
    """Queue a summary refresh after this transaction commits, unless one is already queued (debounce)."""
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


def _queue(session: Session, row: IncidentSummary, created: bool, incident_id: int, now: datetime) -> None:
    queued = row.status == "queued" and row.requested_at is not None and now - row.requested_at < STALE_QUEUED
    if queued and not created:
        return  # a refresh is already on its way; it re-queues itself if it missed this evidence
    if any(task == TASK and args == (incident_id,) for task, args in session.info.get("deferred", [])):
        return
    row.status, row.requested_at = "queued", now
    db.defer(session, TASK, incident_id)


def engine_allowed(session: Session, incident, engine: Engine | None) -> Engine | None:
    """Return the engine if the incident's organization has AI turned on, else None (the built-in writer)."""
    org = session.get(Organization, incident.org_id)
    return engine if org is not None and org.ai_enabled else None


def store(session: Session, incident, content: dict, label: str, error: str | None, version: str,
          now: datetime) -> IncidentSummary:
    """Store a rebuilt summary on the incident's row, marked ready."""
    row = _row(session, incident, now)
    row.status, row.content, row.engine, row.error = "ready", content, db.fit(IncidentSummary.engine, label), error
    row.evidence_version, row.generated_at = version, now
    return row


def evidence_marker(session: Session, incident) -> tuple:
    """Return what changes whenever the incident's evidence may have (cheap: no evidence pack is built)."""
    last_entry = session.scalar(select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident.id))
    last_deploy = session.scalar(select(func.max(Deploy.id)).where(Deploy.org_id == incident.org_id))
    return incident.status, incident.updated_at, last_entry, last_deploy


def to_read(row: IncidentSummary | None, *, fallback: dict | None = None) -> dict:
    """Return the API shape: {status, generated_at, engine, content, error}."""
    if row is None:
        return {"status": "ready" if fallback is not None else "none", "generated_at": None,
                "engine": "builtin" if fallback is not None else None, "content": fallback, "error": None}
    return {"status": row.status, "generated_at": row.generated_at, "engine": row.engine, "content": row.content,
            "error": row.error}
