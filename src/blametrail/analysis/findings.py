"""Findings from raw observability data: metric change points and new or spiking log templates, with ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from blametrail.analysis import changepoints, ids, logs
from blametrail.analysis.observations import LogEvidence, LogLine, MetricEvidence, Series
from blametrail.analysis.times import utc

CHART_POINTS = 200
MAX_LOGS = 50
LOG_LEAD = timedelta(minutes=10)  # the incident's log window opens this long before the incident start
METRIC_LEAD = timedelta(minutes=90)  # change points up to this long before the start count (slow leaks)


def analyse_observations(
    series: Sequence[Series], lines: Sequence[LogLine], *, window_start: datetime, incident_start: datetime,
    window_end: datetime,
) -> tuple[tuple[MetricEvidence, ...], tuple[LogEvidence, ...]]:
    """Find metric change points and new or spiking log templates in the window; ids are deterministic."""
    start, begin, end = utc(incident_start), utc(window_start), utc(window_end)
    return _metrics(series, since=max(begin, start - METRIC_LEAD), end=end), _logs(lines, begin, start, end)


def downsample(
    points: Sequence[tuple[datetime, float]], limit: int = CHART_POINTS,
) -> tuple[tuple[datetime, float], ...]:
    """Keep at most `limit` points for a chart: each bucket's lowest and highest point, in time order."""
    if len(points) <= limit:
        return tuple(points)
    buckets = limit // 2
    kept: list[tuple[datetime, float]] = []
    for b in range(buckets):
        chunk = points[len(points) * b // buckets: len(points) * (b + 1) // buckets]
        low, high = min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])
        kept.extend(sorted({low, high}, key=lambda p: p[0]))
    return tuple(kept)


def _metrics(series: Sequence[Series], *, since: datetime, end: datetime) -> tuple[MetricEvidence, ...]:
    found = []
    for s in series:
        change = changepoints.detect(s, since=since)
        if change is None or change.onset > end:
            continue
        finite = [(at, float(v)) for at, v in s.points if _finite(v)]
        found.append(MetricEvidence(
            id="", series=s.name, service=s.service, onset=change.onset, before=change.before, after=change.after,
            magnitude=round(change.magnitude, 4), direction=change.direction, unit=s.unit, source=s.source,
            points=downsample(finite),
        ))
    found.sort(key=lambda m: (m.onset, m.series, m.service or "", m.source))
    return tuple(replace(m, id=ids.metric_id(n)) for n, m in enumerate(found, 1))


def _logs(lines: Sequence[LogLine], begin: datetime, start: datetime, end: datetime) -> tuple[LogEvidence, ...]:
    split = max(begin, start - LOG_LEAD)
    times = logs.timestamps([line.at for line in lines])
    side = np.searchsorted([begin.timestamp(), split.timestamp()], times, side="right")  # 1 baseline, 2 incident
    side[times > end.timestamp()] = 0
    baseline = [lines[i] for i in np.flatnonzero(side == 1).tolist()]
    incident = [lines[i] for i in np.flatnonzero(side == 2).tolist()]
    stats = logs.mine(
        baseline, incident, baseline_seconds=max((split - begin).total_seconds(), 60.0),
        incident_seconds=max((end - split).total_seconds(), 60.0),
    )
    # Errors first, then new before spiking, then by volume: the cap keeps what explains an incident.
    ranked = sorted(stats, key=lambda s: (not s.error, not s.new, -s.incident_count, s.template))[:MAX_LOGS]
    ranked.sort(key=lambda s: (s.first_seen, s.template, s.service or ""))
    return tuple(
        LogEvidence(
            id=ids.log_id(n), template=s.template, service=s.service, incident_count=s.incident_count,
            baseline_count=s.baseline_count, new=s.new, spike_ratio=s.spike_ratio, first_seen=s.first_seen,
            samples=s.samples, source=s.source,
        )
        for n, s in enumerate(ranked, 1)
    )


def _finite(value: object) -> bool:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return number == number and abs(number) != float("inf")
