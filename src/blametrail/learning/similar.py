"""Similar incidents: which of an organization's incidents resemble this one, scored from their fingerprints.

Fingerprints (analysis/similarity.py) are stored when a draft's evidence has been analysed (`remember`); an incident
without one (still open, or drafted before fingerprints existed) is compared on what its rows say — services, alert
names, the words of its title and description. Candidates are bounded: the incidents that share a service with this
one (the latest CANDIDATES) and those with a stored fingerprint of the same cause or suspect files (the latest
CANDIDATES), so the cost does not grow with the organization's history.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.analysis import similarity
from blametrail.analysis.evidence import EvidencePack, PriorIncident
from blametrail.analysis.ids import incident_id as incident_evidence_id
from blametrail.incidents.models import Incident, IncidentService, TimelineEntry
from blametrail.learning.models import IncidentFingerprint

CANDIDATES = 500
MIN_SCORE = 0.2
DEFAULT_LIMIT = 5


@dataclass(frozen=True)
class Similar:
    incident_id: int
    title: str
    started_at: datetime
    status: str
    severity: str | None
    services: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]


def remember(session: Session, incident: Incident, fingerprint: similarity.Fingerprint, now: datetime) -> None:
    """Store (or replace) an incident's fingerprint."""
    row = session.get(IncidentFingerprint, incident.id)
    if row is None:
        session.add(IncidentFingerprint(incident_id=incident.id, org_id=incident.org_id,
                                        data=fingerprint.to_json(), updated_at=now))
    else:
        row.data, row.updated_at = fingerprint.to_json(), now


def fingerprint_of(session: Session, incident: Incident) -> similarity.Fingerprint:
    """Return the stored fingerprint, else one from the incident's rows (with its alert names)."""
    row = session.get(IncidentFingerprint, incident.id)
    if row is not None:
        return similarity.Fingerprint.from_json(row.data)
    alerts = session.execute(select(TimelineEntry.data).where(TimelineEntry.incident_id == incident.id,
                                                              TimelineEntry.kind == "alert").limit(200)).scalars()
    return similarity.basic(title=incident.title, description=incident.description, services=incident.service_names,
                            alerts={str((d or {}).get("name") or "") for d in alerts})


def similar(session: Session, incident: Incident, *, limit: int = DEFAULT_LIMIT, before_only: bool = False,
            fingerprint: similarity.Fingerprint | None = None) -> list[Similar]:
    """Return the incidents most like this one, best first, each with its score and reasons."""
    subject = fingerprint or fingerprint_of(session, incident)
    ids = set(_sharing_services(session, incident, subject, before_only))
    stored = {r.incident_id: similarity.Fingerprint.from_json(r.data)
              for r in session.scalars(_stored_query(incident, before_only))}
    for iid, fp in list(stored.items()):
        if not (fp.category and fp.category == subject.category) and not (fp.files & subject.files) \
                and iid not in ids:
            del stored[iid]
    ids |= set(stored)
    ids.discard(incident.id)
    if not ids:
        return []
    rows = session.scalars(select(Incident).where(Incident.org_id == incident.org_id, Incident.id.in_(ids))).all()
    missing = [r.id for r in rows if r.id not in stored]
    if missing:
        for r in session.scalars(select(IncidentFingerprint).where(IncidentFingerprint.incident_id.in_(missing))):
            stored[r.incident_id] = similarity.Fingerprint.from_json(r.data)
    out = []
    for row in rows:
        fp = stored.get(row.id) or similarity.basic(title=row.title, description=row.description,
                                                    services=row.service_names)
        score, reasons = similarity.compare(subject, fp)
        if score >= MIN_SCORE and reasons:
            out.append(Similar(incident_id=row.id, title=row.title, started_at=row.started_at, status=row.status,
                               severity=row.severity, services=tuple(row.service_names), score=score,
                               reasons=reasons))
    out.sort(key=lambda s: (-s.score, -s.started_at.timestamp(), -s.incident_id))
    return out[:limit]


def _sharing_services(session: Session, incident: Incident, subject: similarity.Fingerprint,
                      before_only: bool) -> list[int]:
    services = sorted(subject.services or set(incident.service_names))
    if not services:
        return []
    query = (select(Incident.id).join(IncidentService, IncidentService.incident_id == Incident.id)
             .where(Incident.org_id == incident.org_id, IncidentService.service.in_(services),
                    Incident.id != incident.id)
             .group_by(Incident.id, Incident.started_at).order_by(Incident.started_at.desc()).limit(CANDIDATES))
    if before_only:
        query = query.where(Incident.started_at < incident.started_at)
    return list(session.scalars(query))


def _stored_query(incident: Incident, before_only: bool):
    query = (select(IncidentFingerprint).join(Incident, Incident.id == IncidentFingerprint.incident_id)
             .where(IncidentFingerprint.org_id == incident.org_id, IncidentFingerprint.incident_id != incident.id)
             .order_by(Incident.started_at.desc()).limit(CANDIDATES))
    if before_only:
        query = query.where(Incident.started_at < incident.started_at)
    return query


def with_resemblances(pack: EvidencePack, found: list[Similar]) -> EvidencePack:
    """Return the pack with the similar earlier incidents as prior-incident evidence (inc_N), reasons attached."""
    known = {p.id: p for p in pack.prior_incidents}
    for s in found:
        ev = incident_evidence_id(s.incident_id)
        base = known.get(ev) or PriorIncident(id=ev, title=s.title, services=s.services, started_at=s.started_at,
                                              resolved_at=None, severity=s.severity)
        known[ev] = replace(base, score=s.score, reasons=s.reasons)
    ordered = sorted(known.values(), key=lambda p: p.started_at, reverse=True)
    return replace(pack, prior_incidents=tuple(ordered))
