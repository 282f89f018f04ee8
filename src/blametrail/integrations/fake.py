"""The connectors' in-memory twin: returns the Series and LogLines it was given (tests and the demo)."""

from __future__ import annotations

from datetime import datetime

from blametrail.analysis.observations import LogLine, Series
from blametrail.clock import as_utc, parse_iso
from blametrail.errors import UpstreamError
from blametrail.integrations.common import ConnectorConfig, Signal, cap_points
from blametrail.integrations.provider import Credential, Option, Provider, any_query


def _when(value) -> datetime:
    return value if isinstance(value, datetime) else as_utc(parse_iso(str(value)))


def series_from_options(raw: list[dict], source: str) -> list[Series]:
    """Build Series from their JSON form: {"name", "service", "points": [[iso, value]...], "labels", "unit"}."""
    return [Series(name=str(s["name"]), service=s.get("service"),
                   points=tuple(sorted((_when(t), float(v)) for t, v in s.get("points") or [])),
                   labels=tuple(sorted((s.get("labels") or {}).items())), unit=str(s.get("unit") or ""), source=source)
            for s in raw or []]


def lines_from_options(raw: list[dict], source: str) -> list[LogLine]:
    """Build LogLines from their JSON form: {"at", "text", "service", "labels", "signal"}."""
    return [LogLine(at=_when(line["at"]), text=str(line["text"]), service=line.get("service"),
                    labels=tuple(sorted((line.get("labels") or {}).items())), source=source)
            for line in raw or []]


class FakeConnector:
    """Answer from memory: series match a signal by name, lines by signal name (label `signal`) or any."""

    provider = "fake"

    def __init__(self, config: ConnectorConfig, *, series: list[Series] | None = None,
                 lines: list[LogLine] | None = None, fail: str | None = None) -> None:
        self.config = config
        opts = config.options
        self.series = list(series or ()) + series_from_options(opts.get("series") or [], config.name)
        self.lines = list(lines or ()) + lines_from_options(opts.get("logs") or [], config.name)
        self.fail = fail or opts.get("fail")
        self.calls: list[tuple[str, str, str | None]] = []

    def _maybe_fail(self) -> None:
        if self.fail:
            raise UpstreamError(str(self.fail))

    def test(self) -> str:
        """Answer like a healthy backend (or fail as configured)."""
        self._maybe_fail()
        return f"fake connection {self.config.name!r} answered ({len(self.series)} series, {len(self.lines)} lines)"

    def metrics(self, signal: Signal, service: str | None, start: datetime, end: datetime,
                step_seconds: int) -> list[Series]:
        """Return the stored series named like the signal, for this service, cut to [start, end]."""
        self.calls.append(("metrics", signal.name, service))
        self._maybe_fail()
        out = []
        for s in self.series:
            if s.name != signal.name or (service is not None and s.service not in (None, service)):
                continue
            points = [(t, v) for t, v in s.points if start <= t <= end]
            out.append(Series(name=s.name, service=s.service if s.service is not None else service,
                              points=cap_points(points, self.config.limits.max_points), labels=s.labels,
                              unit=s.unit or signal.unit, source=self.config.name))
        return out[: self.config.limits.max_series]

    def logs(self, signal: Signal, service: str | None, start: datetime, end: datetime, limit: int) -> list[LogLine]:
        """Return the stored lines for this service in [start, end], oldest first, at most `limit`."""
        self.calls.append(("logs", signal.name, service))
        self._maybe_fail()
        picked = [line for line in sorted(self.lines, key=lambda x: x.at)
                  if start <= line.at <= end and (service is None or line.service in (None, service))
                  and dict(line.labels).get("signal", signal.name) == signal.name]
        cap = min(limit, self.config.limits.max_lines)
        return [LogLine(at=line.at, text=line.text, service=line.service if line.service is not None else service,
                        labels=line.labels, source=self.config.name) for line in picked[:cap]]


PROVIDER = Provider(
    name="fake", label="Fake (development)", connector=FakeConnector,
    credential_fields=(Credential("token", "Bearer token"),), kinds=("metric", "log"),
    options={"series": Option(list), "logs": Option(list), "fail": Option(str, 0, 2000)},
    query=any_query, dev_only=True)
