"""Raw observability data as connectors return it, and the citable findings analysis derives from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Series:
    """One metric time series from a connector (raw; lives only during a generation)."""

    name: str  # the signal's name, e.g. "error_rate"
    service: str | None
    points: tuple[tuple[datetime, float], ...]  # ascending by time, UTC
    labels: tuple[tuple[str, str], ...] = ()
    unit: str = ""
    source: str = ""  # connection name, e.g. "prod-prometheus"


@dataclass(frozen=True)
class LogLine:
    """One log line from a connector (raw; lives only during a generation)."""

    at: datetime
    text: str
    service: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    source: str = ""


@dataclass(frozen=True)
class MetricEvidence:
    """A metric change point found in a series: citable as `id` and frozen with the generation run."""

    id: str  # "metric_<n>"
    series: str
    service: str | None
    onset: datetime
    before: float  # robust level before the onset
    after: float  # robust level after the onset
    magnitude: float  # relative change, (after - before) / max(|before|, eps)
    direction: str  # "up" | "down"
    unit: str = ""
    source: str = ""
    points: tuple[tuple[datetime, float], ...] = ()  # downsampled (≤ 200) for charts


@dataclass(frozen=True)
class LogEvidence:
    """A log template that is new or spiking in the incident window compared with the baseline window."""

    id: str  # "log_<n>"
    template: str
    service: str | None
    incident_count: int
    baseline_count: int
    new: bool
    spike_ratio: float | None  # incident rate / baseline rate; None when new
    first_seen: datetime | None
    samples: tuple[str, ...] = ()  # ≤ 5 raw lines
    source: str = ""
