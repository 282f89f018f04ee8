"""Connector fetches for an evidence pack: plan inside the transaction, fetch and analyse after it ends."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.findings import analyse_observations
from blametrail.crypto import SecretBox
from blametrail.incidents.models import Incident
from blametrail.integrations import service as integrations
from blametrail.integrations.base import Limits


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


def plan(*, session: Session, incident: Incident, box: SecretBox | None, limits: Limits | None = None) -> list:
    """Return the connector fetches an incident's evidence needs (none without a secret box to read credentials)."""
    if box is None:
        return []
    return integrations.plan_fetch(session=session, org_id=incident.org_id, services=incident.service_names, box=box,
                                   limits=limits)
