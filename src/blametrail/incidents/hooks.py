"""Hooks the incidents service fires inside the caller's transaction; the composition root decides what they do.

Incidents import nothing above them: what happens when evidence arrives (the live summary is refreshed) or an
incident resolves is wired onto the session factory by `runtime.wire_hooks`, and every session that factory makes
carries the hooks in `session.info`. A session from an unwired factory fires nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from blametrail.incidents.models import Incident

_KEY = "incident_hooks"


def _nothing(**_kwargs: object) -> None:
    return None


@dataclass(frozen=True)
class IncidentHooks:
    """What runs, in the same transaction, when incidents change."""

    # evidence arrived on these incidents (opened, updated, a monitor or alert entry): session, incidents, now
    evidence_changed: Callable[..., None] = _nothing
    # the incident was just resolved (its status entry is flushed): session, incident, now
    resolved: Callable[..., None] = _nothing


NO_HOOKS = IncidentHooks()


def install(factory: sessionmaker[Session], hooks: IncidentHooks) -> None:
    """Make every session of this factory fire these hooks."""
    factory.configure(info={**(factory.kw.get("info") or {}), _KEY: hooks})


def of(session: Session) -> IncidentHooks:
    """Return the hooks this session fires."""
    return session.info.get(_KEY, NO_HOOKS)


def evidence_changed(session: Session, incidents: list[Incident], now: datetime) -> None:
    """Fire the evidence-changed hook."""
    if incidents:
        of(session).evidence_changed(session=session, incidents=incidents, now=now)


def resolved(session: Session, incident: Incident, now: datetime) -> None:
    """Fire the resolved hook."""
    of(session).resolved(session=session, incident=incident, now=now)
