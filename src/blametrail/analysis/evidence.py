"""The evidence pack: everything a drafting engine may look at, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from blametrail.analysis.observations import LogEvidence, MetricEvidence
from blametrail.analysis.times import iso

JSON_SAMPLES = 3  # raw log lines per template kept in the stored copy
JSON_TEXT = 2_000  # characters per template or sample in the stored copy


@dataclass(frozen=True)
class UpdateEvidence:
    """A human update posted to the incident timeline (the strongest signal)."""

    id: str  # evidence id, e.g. "upd_12"
    at: datetime
    author: str | None
    body: str


@dataclass(frozen=True)
class StatusEvidence:
    """A status change of the incident (opened, severity changed, resolved…)."""

    id: str  # e.g. "st_3"
    at: datetime
    status: str  # "open" | "resolved" | other lifecycle words
    actor: str | None
    detail: str
    recorded_at: datetime | None = None  # when the row was written (an incident opened late is back-dated)


@dataclass(frozen=True)
class CommitEvidence:
    """One commit shipped by a deploy."""

    id: str  # e.g. "commit_9"
    sha: str
    author: str | None
    message: str
    files: tuple[str, ...]
    committed_at: datetime | None


@dataclass(frozen=True)
class DeployEvidence:
    """A deploy of one of the incident's services before or during the window."""

    id: str  # e.g. "deploy_4"
    service: str
    environment: str
    version: str
    deployed_at: datetime
    commits: tuple[CommitEvidence, ...] = ()


@dataclass(frozen=True)
class MonitorEvidence:
    """A monitor state change: down (threshold reached) or up (recovered), with the outage's numbers."""

    id: str  # e.g. "mon_7"
    at: datetime
    monitor: str
    state: str  # "down" | "up"
    url: str | None = None
    first_failure_at: datetime | None = None
    recovered_at: datetime | None = None
    failed_checks: int = 0
    total_checks: int = 0
    error_kinds: tuple[tuple[str, int], ...] = ()
    last_error: str | None = None


@dataclass(frozen=True)
class AlertEvidence:
    """An alert transition (firing or resolved) from Alertmanager, Grafana or a generic source."""

    id: str  # e.g. "alert_9"
    at: datetime
    name: str
    status: str  # "firing" | "resolved"
    service: str | None = None
    severity: str | None = None
    summary: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IncidentFacts:
    """The incident's own fields."""

    id: int
    title: str
    description: str
    severity: str | None  # "SEV-1".."SEV-4" or None
    services: tuple[str, ...]
    started_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None  # a person's name/email, or "monitor:<name>"
    created_by: str | None
    source: str = "manual"  # who opened it: "manual" (a person), "monitor" or "alert"


@dataclass(frozen=True)
class PriorIncident:
    """An earlier incident of the same organization on one of this incident's services (a possible repeat)."""

    id: str  # evidence id, e.g. "inc_41"
    title: str
    services: tuple[str, ...]
    started_at: datetime
    resolved_at: datetime | None
    severity: str | None = None
    score: float | None = None  # how alike (learning/similar.py), when it was found by resemblance
    reasons: tuple[str, ...] = ()  # what matched: "same service: checkout", "same suspect file: …"


@dataclass(frozen=True)
class MonitorCoverage:
    """A monitor configured on one of the incident's services (whether or not it reported this incident)."""

    name: str
    service: str
    enabled: bool = True


@dataclass(frozen=True)
class EvidencePack:
    """All evidence for one incident window, in chronological order within each kind."""

    incident: IncidentFacts
    window_start: datetime
    window_end: datetime
    updates: tuple[UpdateEvidence, ...] = ()
    status_changes: tuple[StatusEvidence, ...] = ()
    deploys: tuple[DeployEvidence, ...] = ()
    monitor_events: tuple[MonitorEvidence, ...] = ()
    alerts: tuple[AlertEvidence, ...] = ()
    metrics: tuple[MetricEvidence, ...] = ()  # change points from observability connectors
    logs: tuple[LogEvidence, ...] = ()  # new or spiking log templates
    observed: bool = False  # metrics/logs were fetched for the window, so no findings means nothing changed
    prior_incidents: tuple[PriorIncident, ...] = ()  # recent incidents on the same services, newest first
    monitors: tuple[MonitorCoverage, ...] = ()  # monitors configured on the incident's services
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def evidence_ids(self) -> set[str]:
        """Return every evidence id in the pack."""
        ids = {u.id for u in self.updates} | {s.id for s in self.status_changes}
        ids |= {m.id for m in self.monitor_events} | {a.id for a in self.alerts}
        ids |= {m.id for m in self.metrics} | {g.id for g in self.logs}
        ids |= {p.id for p in self.prior_incidents}
        for d in self.deploys:
            ids.add(d.id)
            ids.update(c.id for c in d.commits)
        return ids

    def to_json(self) -> dict:
        """Return a JSON-ready copy, stored with the generation run."""
        inc = self.incident
        return {
            "incident": {
                "id": inc.id, "title": inc.title, "description": inc.description,
                "severity": inc.severity, "services": list(inc.services),
                "started_at": iso(inc.started_at), "resolved_at": iso(inc.resolved_at),
                "resolved_by": inc.resolved_by, "created_by": inc.created_by, "source": inc.source,
            },
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "observed": self.observed or bool(self.metrics or self.logs),
            "updates": [
                {"id": u.id, "at": iso(u.at), "author": u.author, "body": u.body} for u in self.updates
            ],
            "status_changes": [
                {"id": s.id, "at": iso(s.at), "status": s.status, "actor": s.actor, "detail": s.detail,
                 "recorded_at": iso(s.recorded_at)}
                for s in self.status_changes
            ],
            "deploys": [
                {
                    "id": d.id, "service": d.service, "environment": d.environment,
                    "version": d.version, "deployed_at": iso(d.deployed_at),
                    "commits": [
                        {"id": c.id, "sha": c.sha, "author": c.author, "message": c.message,
                         "files": list(c.files), "committed_at": iso(c.committed_at)}
                        for c in d.commits
                    ],
                }
                for d in self.deploys
            ],
            "monitor_events": [
                {"id": m.id, "at": iso(m.at), "monitor": m.monitor, "state": m.state, "url": m.url,
                 "first_failure_at": iso(m.first_failure_at), "recovered_at": iso(m.recovered_at),
                 "failed_checks": m.failed_checks, "total_checks": m.total_checks,
                 "error_kinds": dict(m.error_kinds), "last_error": m.last_error}
                for m in self.monitor_events
            ],
            "alerts": [
                {"id": a.id, "at": iso(a.at), "name": a.name, "status": a.status, "service": a.service,
                 "severity": a.severity, "summary": a.summary, "labels": dict(a.labels)}
                for a in self.alerts
            ],
            "metrics": [
                {"id": m.id, "series": m.series, "service": m.service, "onset": iso(m.onset), "before": m.before,
                 "after": m.after, "magnitude": m.magnitude, "direction": m.direction, "unit": m.unit,
                 "source": m.source, "points": [[iso(at), value] for at, value in m.points]}
                for m in self.metrics
            ],
            "logs": [
                {"id": g.id, "template": g.template[:JSON_TEXT], "service": g.service,
                 "incident_count": g.incident_count, "baseline_count": g.baseline_count, "new": g.new,
                 "spike_ratio": g.spike_ratio, "first_seen": iso(g.first_seen),
                 "samples": [s[:JSON_TEXT] for s in g.samples[:JSON_SAMPLES]], "source": g.source}
                for g in self.logs
            ],
            "prior_incidents": [
                {"id": p.id, "title": p.title, "services": list(p.services), "started_at": iso(p.started_at),
                 "resolved_at": iso(p.resolved_at), "severity": p.severity,
                 **({"score": p.score, "reasons": list(p.reasons)} if p.reasons else {})}
                for p in self.prior_incidents
            ],
            "monitors": [{"name": m.name, "service": m.service, "enabled": m.enabled} for m in self.monitors],
        }
