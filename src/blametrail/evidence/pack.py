"""Stored incident data (timeline, deploys, people) as a frozen evidence pack, read inside one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from blametrail.analysis import ids
from blametrail.analysis.evidence import (
    AlertEvidence,
    CommitEvidence,
    DeployEvidence,
    EvidencePack,
    IncidentFacts,
    MonitorEvidence,
    StatusEvidence,
    UpdateEvidence,
)
from blametrail.clock import to_utc
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident, evidence_id
from blametrail.orgs.models import User


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
            statuses.append(StatusEvidence(id=ev_id, at=e.at, status=e.status or "", actor=e.author, detail=e.body))
    deploys = tuple(
        DeployEvidence(
            id=ids.deploy_id(d.id), service=d.service, environment=d.environment, version=d.version, deployed_at=d.deployed_at,
            commits=tuple(CommitEvidence(id=ids.commit_id(c.id), sha=c.sha, author=c.author, message=c.message,
                                         files=tuple(c.files or ()), committed_at=c.committed_at) for c in d.commits),
        )
        for d in incidents.deploys_in_window(session=session, incident=incident, start=start, end=end)
    )
    facts = IncidentFacts(
        id=incident.id, title=incident.title, description=incident.description or "", severity=incident.severity,
        services=tuple(incident.service_names), started_at=incident.started_at, resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by, created_by=creator.display_name if creator else None,
    )
    return EvidencePack(incident=facts, window_start=start, window_end=end, updates=tuple(updates),
                        status_changes=tuple(statuses), deploys=deploys, monitor_events=tuple(monitor_events),
                        alerts=tuple(alerts))


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
