"""Drafting: the one place I/O meets analysis — gather evidence, run the engine, store the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.ai.base import Audit, BuiltinEngine, DraftingEngine
from blametrail.analysis.evidence import (
    AlertEvidence, CommitEvidence, DeployEvidence, EvidencePack, IncidentFacts, MonitorEvidence, StatusEvidence,
    UpdateEvidence,
)
from blametrail.analysis.findings import analyse_observations
from blametrail.clock import as_utc
from blametrail.crypto import SecretBox
from blametrail.integrations import service as integrations
from blametrail.integrations.base import Limits
from blametrail.errors import UpstreamError
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident, evidence_id
from blametrail.orgs.models import User
from blametrail.postmortems import service
from blametrail.postmortems.models import GenerationRun, Postmortem
from blametrail.postmortems.sections import Sections, dump

log = logging.getLogger(__name__)


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
            id=f"deploy_{d.id}", service=d.service, environment=d.environment, version=d.version, deployed_at=d.deployed_at,
            commits=tuple(CommitEvidence(id=f"commit_{c.id}", sha=c.sha, author=c.author, message=c.message,
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


def _when(value) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def _monitor_evidence(ev_id: str, at: datetime, data: dict) -> MonitorEvidence:
    """Map a monitor timeline entry's data (see monitors/service.py) to evidence."""
    kinds = data.get("error_kinds") or {}
    return MonitorEvidence(
        id=ev_id, at=at, monitor=str(data.get("monitor") or "monitor"), state=str(data.get("state") or ""),
        url=data.get("url"), first_failure_at=_when(data.get("first_failure_at")),
        recovered_at=_when(data.get("recovered_at")), failed_checks=int(data.get("failed_checks") or 0),
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


def _worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def draft_with_fallback(engine: DraftingEngine, pack: EvidencePack) -> tuple[dict, str, str | None]:
    """Run the engine; if a provider fails, use the built-in engine and say why. Return (sections, engine, error)."""
    if hasattr(engine, "audit") and not isinstance(engine, BuiltinEngine):
        try:
            engine.audit = None  # why: an engine reused across runs must not leave the previous run's audit behind
        except AttributeError:
            pass
    try:
        return dump(Sections.model_validate(engine.draft(pack))), engine.label, None
    except UpstreamError as exc:
        if isinstance(engine, BuiltinEngine):
            raise
        reason = f"{exc} This is the built-in engine's draft instead (the {engine.label} engine failed)."
        return dump(Sections.model_validate(BuiltinEngine().draft(pack))), "builtin", reason


def observe(pack: EvidencePack, tasks: list, *, step_seconds: int = 60) -> tuple[EvidencePack, list[str]]:
    """Fetch the planned observability signals (network; no transaction open), analyse them, add the findings."""
    if not tasks:
        return pack, []
    series, lines, errors = integrations.collect(tasks, start=pack.window_start, end=pack.window_end,
                                                 step_seconds=step_seconds)
    metrics, logs = analyse_observations(series, lines, window_start=pack.window_start,
                                         incident_start=pack.incident.started_at, window_end=pack.window_end)
    fetched = len(errors) < len({(t.connection, t.signal.name, t.service) for t in tasks}) or bool(series or lines)
    return replace(pack, metrics=metrics, logs=logs, observed=fetched), errors


class Heartbeat:
    """A thread that keeps refreshing a claimed generation's heartbeat until stopped (or superseded)."""

    def __init__(self, *, factory: sessionmaker[Session], pm_id: int, attempt: int, clock: Callable[[], datetime],
                 interval: float) -> None:
        self._factory, self._pm_id, self._attempt, self._clock, self._interval = factory, pm_id, attempt, clock, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-pm{pm_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with db.transaction(self._factory) as session:
                    alive = service.heartbeat(session=session, pm_id=self._pm_id, attempt=self._attempt,
                                              now=self._clock())
            except Exception:  # why: a database blip must not kill the beat; the next one retries
                log.warning("heartbeat of postmortem %s failed; retrying", self._pm_id, exc_info=True)
                continue
            if not alive:
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def run_generation(
    *, factory: sessionmaker[Session], pm_id: int, engine: DraftingEngine, clock: Callable[[], datetime],
    lookback_minutes: int, box: SecretBox | None = None, limits: Limits | None = None,
    heartbeat_seconds: float = 10.0,
) -> str:
    """Claim a queued postmortem, draft it and store the result; return what happened (for logs and tests)."""
    engine = _engine_of_org(factory, pm_id, engine)
    with db.transaction(factory) as session:
        claimed = service.claim(session=session, pm_id=pm_id, engine=engine.label, worker=_worker_label(), now=clock())
        if claimed is None:
            return "skipped"
        pm, run = claimed
        attempt, run_id, incident_id = pm.attempt, run.id, pm.incident_id
        # why: a regeneration builds on what people wrote; the prompt builder reads these from pack.extra
        regeneration = {"current_sections": pm.sections, "edited_keys": list(pm.edited_keys or [])} if pm.sections else {}
    with Heartbeat(factory=factory, pm_id=pm_id, attempt=attempt, clock=clock, interval=heartbeat_seconds):
        return _draft_claimed(factory=factory, pm_id=pm_id, engine=engine, clock=clock, attempt=attempt, run_id=run_id,
                              incident_id=incident_id, regeneration=regeneration, lookback_minutes=lookback_minutes,
                              box=box, limits=limits)


def _draft_claimed(
    *, factory: sessionmaker[Session], pm_id: int, engine: DraftingEngine, clock: Callable[[], datetime], attempt: int,
    run_id: int, incident_id: int, regeneration: dict, lookback_minutes: int, box: SecretBox | None,
    limits: Limits | None,
) -> str:
    """Gather evidence, run the engine and store the draft (or the failure) of a claimed attempt."""
    evidence: dict | None = None
    try:
        with db.transaction(factory) as session:
            incident = session.get(Incident, incident_id)
            pack = build_pack(session=session, incident=incident, lookback_minutes=lookback_minutes, now=clock())
            if regeneration:
                pack = replace(pack, extra={**pack.extra, **regeneration})
            tasks = [] if box is None else integrations.plan_fetch(
                session=session, org_id=incident.org_id, services=incident.service_names, box=box, limits=limits)
        # why: backends are queried after the transaction ends so a slow one never holds database locks
        pack, missing = observe(pack, tasks)
        evidence = pack.to_json()
        if missing:
            evidence["observability_errors"] = missing
        sections, label, error = draft_with_fallback(engine, pack)
        if missing:
            note = "Some observability evidence could not be fetched: " + "; ".join(missing)
            error = f"{error} {note}" if error else note
    except Exception as exc:  # why: any failure must end in `failed` with its reason, never stuck in generating
        log.exception("generation of postmortem %s failed", pm_id)
        reason = str(exc) if isinstance(exc, UpstreamError) else f"Drafting failed: {type(exc).__name__}: {exc}"
        with db.transaction(factory) as session:
            service.fail(session=session, pm_id=pm_id, attempt=attempt, run_id=run_id, error=reason, evidence=evidence,
                         now=clock())
            store_audit(session=session, run_id=run_id, audit=getattr(engine, "audit", None))
        return "failed"
    with db.transaction(factory) as session:
        done = service.finish(session=session, pm_id=pm_id, attempt=attempt, run_id=run_id, draft=sections, engine=label,
                              error=error, evidence=evidence, now=clock())
        store_audit(session=session, run_id=run_id, audit=getattr(engine, "audit", None))
    return "drafted" if done else "superseded"


def _engine_of_org(factory: sessionmaker[Session], pm_id: int, engine: DraftingEngine) -> DraftingEngine:
    """Resolve an installation-wide engine to the postmortem's organization's own (see Runtime.drafting_engine)."""
    resolve = getattr(engine, "for_org", None)
    if resolve is None:
        return engine
    with db.transaction(factory) as session:
        org_id = session.scalar(select(Postmortem.org_id).where(Postmortem.id == pm_id))
    return engine if org_id is None else resolve(org_id)


def store_audit(*, session: Session, run_id: int, audit: Audit | None) -> None:
    """Record what the model was sent and answered on the run (nothing for the built-in engine)."""
    run = session.get(GenerationRun, run_id)
    if run is None or audit is None:
        return
    run.prompt_version, run.prompt, run.response_raw = audit.prompt_version, audit.prompt, audit.response_raw
    run.tokens_in, run.tokens_out, run.model_latency_ms = audit.tokens_in, audit.tokens_out, audit.latency_ms


def is_in_flight(pm: Postmortem) -> bool:
    """Tell whether a generation is queued or running."""
    return pm.status in ("queued", "generating")
