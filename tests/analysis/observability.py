"""Observability factories for analysis tests: synthetic series, log lines and findings, seeded and small."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from blametrail.analysis.observations import LogEvidence, LogLine, MetricEvidence, Series

from .factories import T0, at


def series(values, *, name: str = "error_rate", service: str | None = "checkout", start: datetime | None = None,
           step_seconds: float = 60, unit: str = "ratio") -> Series:
    """Build a series with one point every `step_seconds` from `start` (default: 2 hours before T0)."""
    first = start or T0 - timedelta(hours=2)
    points = tuple((first + timedelta(seconds=step_seconds * i), float(v)) for i, v in enumerate(values))
    return Series(name=name, service=service, points=points, unit=unit)


def step(n: int = 180, at_index: int = 120, before: float = 0.002, after: float = 0.14, noise: float = 0.0005,
         seed: int = 1) -> np.ndarray:
    """Return noisy values that shift from `before` to `after` at `at_index`."""
    rng = np.random.default_rng(seed)
    values = before + rng.normal(0, noise, n)
    values[at_index:] += after - before
    return values


def lines(template: str, start_minutes: float, count: int, *, every_seconds: float = 10,
          service: str | None = "checkout") -> list[LogLine]:
    """Build `count` log lines from a template with {n} filled by a changing number."""
    first = at(start_minutes)
    return [LogLine(at=first + timedelta(seconds=every_seconds * i), text=template.format(n=1000 + i * 37),
                    service=service) for i in range(count)]


def metric(mid: str, minutes: float, *, series_name: str = "error_rate", service: str | None = "checkout",
           before: float = 0.002, after: float = 0.14, unit: str = "ratio") -> MetricEvidence:
    """Build a metric change point finding at `minutes` after T0."""
    return MetricEvidence(id=mid, series=series_name, service=service, onset=at(minutes), before=before,
                          after=after, magnitude=(after - before) / before,
                          direction="up" if after > before else "down", unit=unit)


def log(lid: str, minutes: float, template: str, *, count: int = 120, service: str | None = "checkout",
        samples: tuple[str, ...] = (), new: bool = True) -> LogEvidence:
    """Build a new (or spiking) log template finding first seen `minutes` after T0."""
    return LogEvidence(id=lid, template=template, service=service, incident_count=count,
                       baseline_count=0 if new else 3, new=new, spike_ratio=None if new else 40.0,
                       first_seen=at(minutes), samples=samples or (template,))
