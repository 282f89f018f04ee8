"""Prometheus connector: PromQL over `/api/v1/query_range` (also Thanos, Mimir, VictoriaMetrics, Cortex)."""

from __future__ import annotations

import logging
from datetime import datetime

from blametrail.analysis.observations import LogLine, Series
from blametrail.errors import UpstreamError
from blametrail.integrations.common import (
    ConnectorConfig,
    Signal,
    UpstreamStatusError,
    api_url,
    cap_points,
    cap_series,
    finite,
    http_client,
    render,
    request_json,
    sanitize,
    seconds,
    step_for,
    utc_from_seconds,
)
from blametrail.integrations.provider import TOKEN_OR_BASIC, Provider, base_url, token_or_basic
from blametrail.netguard import redact_userinfo

log = logging.getLogger(__name__)


def parse_matrix(body: dict, *, what: str, signal: Signal, service: str | None, source: str,
                 max_points: int) -> list[Series]:
    """Turn a Prometheus-style `matrix` (or `vector`/`scalar`) result into Series, dropping NaN and ±Inf."""
    if body.get("status") == "error":
        reason = sanitize(str(body.get("error") or body.get("errorType") or "no reason given"))
        raise UpstreamError(f"{what} rejected the query: {reason}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise UpstreamError(f"{what} answered without a data field: check that the URL points at the API")
    kind, result = data.get("resultType"), data.get("result") or []
    if kind == "scalar":
        result = [{"metric": {}, "value": result}]
    out = []
    for item in result:
        raw = item.get("values") or ([item["value"]] if item.get("value") else [])
        points = [(utc_from_seconds(float(ts)), v) for ts, value in raw if (v := finite(value)) is not None]
        labels = tuple(sorted((str(k), str(v)) for k, v in (item.get("metric") or {}).items()))
        out.append(Series(name=signal.name, service=service, points=cap_points(points, max_points), labels=labels,
                          unit=signal.unit, source=source))
    return out


class PrometheusConnector:
    """Read metrics from a Prometheus-compatible HTTP API."""

    provider = "prometheus"

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.what = f"Prometheus at {redact_userinfo(config.endpoint)}"

    def _get(self, path: str, params: dict) -> dict:
        with http_client(self.config) as client:
            return request_json(client, "GET", api_url(self.config.endpoint, path), params=params, what=self.what,
                                timeout=self.config.limits.timeout_seconds, outbound=self.config.limits.outbound)

    def test(self) -> str:
        """Check the server answers with these credentials; return a one-line description."""
        try:
            info = self._get("/api/v1/status/buildinfo", {})
            version = (info.get("data") or {}).get("version")
        except UpstreamStatusError as exc:
            if exc.status != 404:
                raise
            version = None  # why: some compatible servers lack buildinfo; a trivial query proves the API works
        self._get("/api/v1/query", {"query": "1"})
        return f"{self.what} answered" + (f" (version {version})" if version else "") + "; queries work"

    def metrics(self, signal: Signal, service: str | None, start: datetime, end: datetime,
                step_seconds: int) -> list[Series]:
        """Run the signal's PromQL over [start, end] and return its series (capped)."""
        limits = self.config.limits
        step = step_for(start, end, step_seconds, limits.max_points)
        params = {"query": render(signal.query, service), "start": f"{start.timestamp():.3f}",
                  "end": f"{end.timestamp():.3f}", "step": str(step),
                  "timeout": seconds(limits.timeout_seconds)}  # float seconds: "0.5s" is not a Prometheus duration
        body = self._get("/api/v1/query_range", params)
        series = parse_matrix(body, what=self.what, signal=signal, service=service, source=self.config.name,
                              max_points=limits.max_points)
        if len(series) > limits.max_series:
            log.info("%s: %s returned %d series, keeping %d", self.config.name, signal.name, len(series),
                     limits.max_series)
        return cap_series(series, limits.max_series)

    def logs(self, signal: Signal, service: str | None, start: datetime, end: datetime, limit: int) -> list[LogLine]:
        """Prometheus holds no logs."""
        raise UpstreamError(f"{self.what} has no logs: signal {signal.name!r} must be a metric signal")


PROVIDER = Provider(
    name="prometheus", label="Prometheus", connector=PrometheusConnector,
    credential_fields=TOKEN_OR_BASIC, kinds=("metric",),
    endpoint=base_url("http://prometheus:9090"), credentials=token_or_basic,
    endpoint_help="base URL (http:// or https://)", credentials_help="token, or username and password",
    credentials_hint="a token, or a username and password")
