"""The summary job: read the evidence, summarise outside any transaction, store; again if evidence moved meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.engines.base import Engine
from blametrail.evidence.pack import build_pack
from blametrail.incidents.models import Incident
from blametrail.summaries import service as summaries


def run_refresh(*, factory: sessionmaker[Session], incident_id: int, clock: Callable[[], datetime],
                lookback_minutes: int, engine: Engine | None = None) -> str:
    """The job: read the evidence, summarise outside any transaction, store; re-queue if evidence moved meanwhile."""
    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return "missing"
        pack = build_pack(session=session, incident=incident, lookback_minutes=lookback_minutes, now=clock())
        marker = summaries.evidence_marker(session, incident)
        engine = summaries.engine_allowed(session, incident, engine)
    version = summaries.evidence_version(pack)
    content, label, error = summaries.summarize_with(engine, pack)  # why: a model call never holds database locks
    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return "missing"
        row = summaries.store(session, incident, content, label, error, version, clock())
        if summaries.evidence_marker(session, incident) != marker:  # evidence arrived while this ran (debounced): go again
            row.status, row.requested_at = "queued", clock()
            db.defer(session, summaries.TASK, incident_id)
            return "requeued"
    return "ready"
