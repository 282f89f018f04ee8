"""Stored incident data (timeline, deploys, people) as a frozen evidence pack, read inside one transaction.

Besides the incident's own window the pack holds three things the analysis needs: deploys of its services in the
AFTER_RESOLUTION day after it was resolved (a fix shipped later goes in the timeline's after-resolution part), the
organization's recent incidents on the same services (analysis.factors.REPEAT_WINDOW, for "a repeat of a recent
incident"), and the monitors configured on its services (for "monitors exist but none reported it").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.analysis import ids
from blametrail.analysis.evidence import (
    AlertEvidence,
    CommitEvidence,
    DeployEvidence,
    EvidencePack,
    IncidentFacts,
    MonitorCoverage,
    MonitorEvidence,
    PriorIncident,
    StatusEvidence,
    UpdateEvidence,
)
from blametrail.analysis.factors import REPEAT_WINDOW
from blametrail.clock import to_utc
from blametrail.deploys.models import Deploy
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident, IncidentService, evidence_id
from blametrail.monitors.models import Monitor
from blametrail.orgs.models import User

AFTER_RESOLUTION = timedelta(hours=24)  # deploys of the incident's services this long after resolution are kept
MAX_PRIOR_INCIDENTS = 5
MAX_MONITORS = 50


def build_pack(*, session: Session, incident: Incident, lookback_minutes: int, now: datetime) -> EvidencePack:
    """Collect the incident's evidence for its window into a frozen pack."""
    start, end = incidents.window(incident, lookback_minutes=lookback_minutes, now=now)
    creator = session.get(User, incident.created_by_user_id) if incident.created_by_user_id else None
    updates, statuses, monitor_events, alerts = [], [], [], []
    for e in incidents.entries(session=session, incident=incident):
        ev_id = evidence_id(e)
        if e.kind == "update":
            updates.append(UpdateEvidence(id=ev_id, at=e.at, author=e.author, body=e.body))
        elif e.kind == "monitor":
            monitor_events.append(_monitor_evidence(ev_id, e.at, e.data or {}))
        elif e.kind == "alert":
            alerts.append(_alert_evidence(ev_id, e.at, e.data or {}))
        else:
            statuses.append(StatusEvidence(id=ev_id, at=e.at, status=e.status or "", actor=e.author, detail=e.body,
                                           recorded_at=e.created_at))
    rows = incidents.deploys_in_window(session=session, incident=incident, start=start, end=end)
    if incident.resolved_at is not None:
        # why: a fix shipped after the resolution belongs in the timeline's marked after-resolution part
        later = incidents.deploys_in_window(session=session, incident=incident, start=incident.resolved_at,
                                            end=min(now, incident.resolved_at + AFTER_RESOLUTION))
        seen = {d.id for d in rows}
        rows += [d for d in later if d.id not in seen]
    facts = IncidentFacts(
        id=incident.id, title=incident.title, description=incident.description or "", severity=incident.severity,
        services=tuple(incident.service_names), started_at=incident.started_at, resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by, created_by=creator.display_name if creator else None,
        source=incident.source or "manual",
    )
    return EvidencePack(incident=facts, window_start=start, window_end=end, updates=tuple(updates),
                        status_changes=tuple(statuses), deploys=tuple(_deploy_evidence(d) for d in rows),
                        monitor_events=tuple(monitor_events), alerts=tuple(alerts),
                        prior_incidents=_prior_incidents(session, incident), monitors=_monitors(session, incident))


def _deploy_evidence(d: Deploy) -> DeployEvidence:
    return DeployEvidence(
        id=ids.deploy_id(d.id), service=d.service, environment=d.environment, version=d.version,
        deployed_at=d.deployed_at,
        commits=tuple(CommitEvidence(id=ids.commit_id(c.id), sha=c.sha, author=c.author, message=c.message,
                                     files=tuple(c.files or ()), committed_at=c.committed_at) for c in d.commits),
    )


def _prior_incidents(session: Session, incident: Incident) -> tuple[PriorIncident, ...]:
    """Return the organization's incidents on the same services that started in the REPEAT_WINDOW before this one."""
    services = incident.service_names
    if not services:
        return ()
    shared = select(IncidentService.incident_id).where(IncidentService.service.in_(services))
    rows = session.scalars(
        select(Incident).where(Incident.org_id == incident.org_id, Incident.id != incident.id,
                               Incident.started_at < incident.started_at,
                               Incident.started_at >= incident.started_at - REPEAT_WINDOW, Incident.id.in_(shared))
        .order_by(Incident.started_at.desc(), Incident.id.desc()).limit(MAX_PRIOR_INCIDENTS)
    )
    return tuple(PriorIncident(id=ids.incident_id(p.id), title=p.title, services=tuple(p.service_names),
                               started_at=p.started_at, resolved_at=p.resolved_at, severity=p.severity) for p in rows)


def _monitors(session: Session, incident: Incident) -> tuple[MonitorCoverage, ...]:
    """Return the monitors configured on the incident's services."""
    services = incident.service_names
    if not services:
        return ()
    rows = session.scalars(select(Monitor).where(Monitor.org_id == incident.org_id, Monitor.service.in_(services))
                           .order_by(Monitor.name, Monitor.id).limit(MAX_MONITORS))
    return tuple(MonitorCoverage(name=m.name, service=m.service or "", enabled=m.enabled) for m in rows)


def _monitor_evidence(ev_id: str, at: datetime, data: dict) -> MonitorEvidence:
    """Map a monitor timeline entry's data (see monitors/service.py) to evidence."""
    kinds = data.get("error_kinds") or {}
    return MonitorEvidence(
        id=ev_id, at=at, monitor=str(data.get("monitor") or "monitor"), state=str(data.get("state") or ""),
        url=data.get("url"), first_failure_at=to_utc(data.get("first_failure_at")),
        recovered_at=to_utc(data.get("recovered_at")), failed_checks=int(data.get("failed_checks") or 0),
        total_checks=int(data.get("total_checks") or 0),
        error_kinds=tuple(sorted((str(k), int(v)) for k, v in kinds.items())) if isinstance(kinds, dict) else (),
        last_error=data.get("last_error"),
    )


def _alert_evidence(ev_id: str, at: datetime, data: dict) -> AlertEvidence:
    """Map an alert timeline entry's data (see alerts/service.py) to evidence."""
    labels = data.get("labels") or {}
    return AlertEvidence(
        id=ev_id, at=at, name=str(data.get("name") or "alert"), status=str(data.get("status") or ""),
        service=data.get("service"), severity=data.get("severity"), summary=str(data.get("summary") or ""),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())) if isinstance(labels, dict) else (),
    )
