"""Connector fetches for an evidence pack: plan inside the transaction, fetch and analyse after it ends; the findings
of a fetch can be cached (as JSON) and reused while fresh, so a storm of rebuilds does not query the backends each time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.findings import analyse_observations
from blametrail.analysis.observations import LogEvidence, MetricEvidence
from blametrail.clock import iso, to_utc
from blametrail.crypto import SecretBox
from blametrail.incidents.models import Incident
from blametrail.integrations import service as integrations
from blametrail.integrations.base import Limits
from blametrail.safejson import problem as json_problem

CACHE_FORMAT = 1  # bump when the cached shape changes: older caches are then ignored (fetched again), never misread


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


# --- cached fetches ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Observed:
    """The pack with its metric and log findings, what could not be fetched, and the cache to store (None: reused)."""

    pack: EvidencePack
    errors: list[str]
    cache: dict | None  # set when the backends were asked just now; store it with the time it was fetched
    fetched: bool  # the connectors were queried for this pack (False: no connection applies, or the cache served)


def plan_key(pack: EvidencePack, tasks: list) -> str:
    """Return a fingerprint of what a fetch would ask for: each connection's signal and service, and the window's
    fixed edges (its start, the incident's start and resolution). A cache made for another key is not reused."""
    # why: the moving end of an open incident's window is left out, or no cache would ever match; a resolution
    # ends the window, so the final findings are fetched once more for it
    parts = sorted(f"{t.connection}\x1f{t.signal!r}\x1f{t.service}\x1f{t.setup_error}" for t in tasks)
    parts += [iso(pack.window_start) or "", iso(pack.incident.started_at) or "", iso(pack.incident.resolved_at) or ""]
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def observe_cached(pack: EvidencePack, tasks: list, *, cached: dict | None, observed_at: datetime | None,
                   now: datetime, ttl: timedelta, step_seconds: int = 60) -> Observed:
    """Reuse the cached findings when they were fetched less than `ttl` ago for the same plan, else fetch (network;
    no transaction open) and return the new cache."""
    if not tasks:
        return Observed(pack, [], None, False)
    key = plan_key(pack, tasks)
    fresh = observed_at is not None and timedelta(0) <= now - observed_at < ttl
    reused = from_cache(pack, cached, key=key) if fresh else None
    if reused is not None:
        return Observed(*reused, None, False)
    observed, errors = observe(pack, tasks, step_seconds=step_seconds)
    return Observed(observed, errors, to_cache(observed, errors, key=key), True)


def to_cache(pack: EvidencePack, errors: list[str], *, key: str) -> dict | None:
    """Return the pack's findings as storable JSON (None when they cannot be stored, e.g. a non-finite number)."""
    out = {
        "format": CACHE_FORMAT, "key": key, "observed": pack.observed, "errors": list(errors),
        "metrics": [{"id": m.id, "series": m.series, "service": m.service, "onset": iso(m.onset), "before": m.before,
                     "after": m.after, "magnitude": m.magnitude, "direction": m.direction, "unit": m.unit,
                     "source": m.source, "points": [[iso(at), value] for at, value in m.points]}
                    for m in pack.metrics],
        "logs": [{"id": g.id, "template": g.template, "service": g.service, "incident_count": g.incident_count,
                  "baseline_count": g.baseline_count, "new": g.new, "spike_ratio": g.spike_ratio,
                  "first_seen": iso(g.first_seen), "samples": list(g.samples), "source": g.source}
                 for g in pack.logs],
    }
    # why: the database refuses such JSON; the summary is still written, only the next rebuild fetches again
    return None if json_problem(out) else out


def from_cache(pack: EvidencePack, cached: object, *, key: str) -> tuple[EvidencePack, list[str]] | None:
    """Return the pack with the cached findings and errors, or None when the cache is absent, foreign or unreadable."""
    if not isinstance(cached, dict) or cached.get("format") != CACHE_FORMAT or cached.get("key") != key:
        return None
    try:
        metrics = tuple(MetricEvidence(
            id=str(m["id"]), series=str(m["series"]), service=m.get("service"), onset=_when(m["onset"]),
            before=float(m["before"]), after=float(m["after"]), magnitude=float(m["magnitude"]),
            direction=str(m["direction"]), unit=str(m.get("unit") or ""), source=str(m.get("source") or ""),
            points=tuple((_when(at), float(value)) for at, value in m.get("points") or ()))
            for m in cached["metrics"])
        logs = tuple(LogEvidence(
            id=str(g["id"]), template=str(g["template"]), service=g.get("service"),
            incident_count=int(g["incident_count"]), baseline_count=int(g["baseline_count"]), new=bool(g["new"]),
            spike_ratio=None if g.get("spike_ratio") is None else float(g["spike_ratio"]),
            first_seen=to_utc(g.get("first_seen")), samples=tuple(str(s) for s in g.get("samples") or ()),
            source=str(g.get("source") or ""))
            for g in cached["logs"])
        errors = [str(e) for e in cached.get("errors") or ()]
    except (KeyError, TypeError, ValueError):  # why: a damaged cache costs one fetch, never the summary
        return None
    return replace(pack, metrics=metrics, logs=logs, observed=bool(cached.get("observed"))), errors


def _when(value: object) -> datetime:
    at = to_utc(value)
    if at is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return at
