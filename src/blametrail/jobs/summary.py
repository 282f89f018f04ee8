"""The summary job: claim the refresh → gather the postmortem's evidence (stored data, then the connectors' metrics
and logs, cached on the row) → summarise with the organization's engine outside any transaction → store; again,
one interval later, if evidence moved meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.evidence import observe as evidence_observe
from blametrail.evidence.pack import build_pack
from blametrail.incidents.models import Incident
from blametrail.integrations.base import Limits
from blametrail.jobs.generation import EngineChoice
from blametrail.summaries import service as summaries

log = logging.getLogger(__name__)

Later = Callable[[int, float], None]  # (incident id, delay in seconds) → run the refresh job again after the delay


def run_refresh(*, factory: sessionmaker[Session], incident_id: int, clock: Callable[[], datetime],
                lookback_minutes: int, choose_engine: EngineChoice, later: Later, box: SecretBox | None = None,
                limits: Limits | None = None, min_interval_seconds: float = 0,
                observation_ttl_seconds: float = 0) -> str:
    """Rebuild the incident's live summary unless it was rebuilt less than the minimum interval ago (then run again
    when the interval ends); return what happened: ready, requeued, waiting, skipped, failed or missing."""
    min_interval = timedelta(seconds=min_interval_seconds)
    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return "missing"
        now = clock()
        claimed = summaries.claim(session=session, incident=incident, now=now, min_interval=min_interval)
    if claimed.action == "wait":
        _later(later, incident_id, claimed.wait)
        return "waiting"
    if claimed.action != "build":
        return "skipped"
    try:
        with db.transaction(factory) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                return "missing"
            pack = build_pack(session=session, incident=incident, lookback_minutes=lookback_minutes, now=now)
            tasks = evidence_observe.plan(session=session, incident=incident, box=box, limits=limits)
            marker = summaries.evidence_marker(session, incident)
            engine = summaries.engine_allowed(session, incident, choose_engine)
        # why: connectors and the model are asked after the transaction ends, so a slow one never holds locks
        observed = evidence_observe.observe_cached(pack, tasks, cached=claimed.observations,
                                                   observed_at=claimed.observed_at, now=now,
                                                   ttl=timedelta(seconds=observation_ttl_seconds))
        content, label, error = summaries.summarize_with(engine, observed.pack)
        if observed.errors:
            note = "Some observability evidence could not be fetched: " + "; ".join(observed.errors)
            error = f"{error} {note}" if error else note
        version = summaries.evidence_version(observed.pack)
    except Exception as exc:  # why: a claimed build ends ready or failed, never "Updating…" until the sweep
        log.exception("live summary of incident %s failed", incident_id)
        with db.transaction(factory) as session:
            incident = session.get(Incident, incident_id)
            if incident is not None:
                summaries.fail(session, incident, f"The summary could not be rebuilt: {type(exc).__name__}: {exc}",
                               clock())
        return "failed"
    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return "missing"
        done = clock()
        row = summaries.store(session, incident, content, label, error, version, done,
                              observed=(observed.cache, now) if observed.fetched else None)
        moved = summaries.evidence_marker(session, incident) != marker
        if moved:  # evidence arrived while this ran (debounced): go again once the interval has passed
            summaries.postpone(row, done + min_interval)
    if moved:
        _later(later, incident_id, min_interval)
        return "requeued"
    return "ready"


def _later(later: Later, incident_id: int, wait: timedelta) -> None:
    try:
        later(incident_id, max(0.0, wait.total_seconds()))
    except Exception:  # why: the row stays queued with its due time; the sweep re-queues it when the queue is back
        log.exception("could not schedule the live summary of incident %s; the sweep will retry", incident_id)
