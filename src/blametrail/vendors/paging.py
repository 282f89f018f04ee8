"""Paging tools as incident sources (PagerDuty, Opsgenie): what their events do to BlameTrail's incidents.

A vendor module parses its payload into `PageEvent`s; `apply` does the rest, idempotent on the vendor's ids (the
delivery's event id through `vendors.service.first_time`, the vendor's incident through `external_link`):
- triggered → open an incident (or attach to the open one on the same service), linked to the vendor's incident;
- acknowledged → a status entry and the incident's first `acknowledged_at`/`acknowledged_by` (time to acknowledge);
- a note → a human update, cited like any update;
- resolved → resolve the incident, which drafts the postmortem as any resolve does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.postmortems import service as postmortems
from blametrail.vendors.models import ExternalLink

KINDS = ("triggered", "acknowledged", "note", "resolved")


@dataclass(frozen=True)
class PageEvent:
    kind: str  # triggered | acknowledged | note | resolved | ignored
    key: str  # the vendor's incident (alert) id
    at: datetime
    title: str = ""
    service: str = ""
    severity: str | None = None
    agent: str = ""
    text: str = ""
    url: str | None = None


def _link_kind(vendor: str) -> str:
    return f"{vendor}_incident"


def _linked(session: Session, org_id: int, vendor: str, key: str) -> Incident | None:
    link = session.scalar(select(ExternalLink).where(ExternalLink.org_id == org_id,
                                                     ExternalLink.kind == _link_kind(vendor),
                                                     ExternalLink.external_id == key[:255]))
    return session.get(Incident, link.incident_id) if link is not None and link.incident_id else None


def _link(session: Session, org_id: int, vendor: str, event: PageEvent, incident: Incident, now: datetime) -> None:
    session.add(ExternalLink(org_id=org_id, kind=_link_kind(vendor), external_id=event.key[:255],
                             incident_id=incident.id, data={"url": event.url, "title": event.title[:300]},
                             created_at=now, updated_at=now))
    session.flush()


def apply(*, session: Session, org_id: int, vendor: str, label: str, event: PageEvent, now: datetime) -> dict:
    """Apply one event; return what happened ({outcome, incident_id})."""
    at = min(event.at, now)
    incident = _linked(session, org_id, vendor, event.key)
    if event.kind == "triggered":
        if incident is not None:
            return {"outcome": "already open", "incident_id": incident.id}
        existing = incidents.find_open_for_service(session=session, org_id=org_id, service=event.service) \
            if event.service else None
        if existing is not None:
            incidents.add_entry(session=session, incident=existing, kind="status", at=at, now=now, author=label,
                                body=f"{label} incident attached: {event.title}", data={"source": vendor,
                                                                                         "url": event.url})
            _link(session, org_id, vendor, event, existing, now)
            return {"outcome": "attached", "incident_id": existing.id}
        created = incidents.open_system(session=session, org_id=org_id, title=event.title or f"{label} incident",
                                        severity=event.severity, services=[event.service] if event.service else [],
                                        started_at=at, source="alert", source_ref=f"{vendor}:{event.key}"[:200],
                                        opened_by=label, now=now, data={"source": vendor, "url": event.url})
        _link(session, org_id, vendor, event, created, now)
        return {"outcome": "opened", "incident_id": created.id}
    if incident is None:
        return {"outcome": "not linked", "incident_id": None}
    who = f"{event.agent} ({label})" if event.agent else label
    if event.kind == "acknowledged":
        if incident.acknowledged_at is None:
            incident.acknowledged_at, incident.acknowledged_by = at, who[:320]
        incidents.add_entry(session=session, incident=incident, kind="status", at=at, now=now, author=who,
                            body=f"Acknowledged by {who}", data={"source": vendor, "status": "acknowledged"})
        return {"outcome": "acknowledged", "incident_id": incident.id}
    if event.kind == "note":
        if not event.text.strip():
            return {"outcome": "empty note", "incident_id": incident.id}
        incidents.add_entry(session=session, incident=incident, kind="update", at=at, now=now, author=who,
                            body=event.text, data={"source": vendor})
        return {"outcome": "note added", "incident_id": incident.id}
    if event.kind == "resolved":
        if incident.status != "open":
            return {"outcome": "already resolved", "incident_id": incident.id}
        postmortems.resolve_incident(session=session, incident=incident, now=now,
                                     resolved_at=max(at, incident.started_at), by_label=who, by_user_id=None)
        return {"outcome": "resolved", "incident_id": incident.id}
    return {"outcome": "ignored", "incident_id": incident.id}
