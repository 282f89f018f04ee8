"""Grafana Loki connector: LogQL over `/loki/api/v1/query_range`, log streams paginated forward in time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from blametrail.analysis.observations import LogLine, Series
from blametrail.errors import UpstreamError
from blametrail.integrations.common import (
    ConnectorConfig,
    Signal,
    api_url,
    cap_series,
    http_client,
    render,
    request_json,
    sanitize,
    step_for,
)
from blametrail.integrations.prometheus import parse_matrix
from blametrail.integrations.provider import (
    TOKEN_OR_BASIC,
    Option,
    Provider,
    base_url,
    fail,
    string_query,
    token_or_basic,
)
from blametrail.netguard import redact_userinfo

log = logging.getLogger(__name__)
PAGE = 1000  # entries per request; Loki's default max_entries_limit_per_query is 5000
MAX_PAGES = 200  # why: a server that keeps answering full pages must not hold a worker forever


def _ns(value: datetime) -> int:
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


def _at(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1000)


class LokiConnector:
    """Read logs (and LogQL metric queries) from Loki."""

    provider = "loki"

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.what = f"Loki at {redact_userinfo(config.endpoint)}"
        tenant = config.options.get("tenant")
        self.headers = {"X-Scope-OrgID": str(tenant)} if tenant else {}

    def _get(self, path: str, params: dict) -> dict:
        with http_client(self.config, self.headers) as client:
            body = request_json(client, "GET", api_url(self.config.endpoint, path), params=params, what=self.what,
                                timeout=self.config.limits.timeout_seconds, outbound=self.config.limits.outbound)
        if body.get("status") not in (None, "success"):
            reason = sanitize(str(body.get("error") or body.get("status")))
            raise UpstreamError(f"{self.what} rejected the query: {reason}")
        return body

    def test(self) -> str:
        """Check Loki answers with these credentials (and tenant); return a one-line description."""
        body = self._get("/loki/api/v1/labels", {})
        labels = body.get("data") or []
        tenant = self.headers.get("X-Scope-OrgID")
        return (f"{self.what} answered" + (f" for tenant {tenant}" if tenant else "")
                + f"; {len(labels)} label{'s' if len(labels) != 1 else ''} visible")

    def metrics(self, signal: Signal, service: str | None, start: datetime, end: datetime,
                step_seconds: int) -> list[Series]:
        """Run a LogQL metric query (e.g. `sum(rate({app="$service"} |= "error" [1m]))`) over [start, end]."""
        limits = self.config.limits
        step = step_for(start, end, step_seconds, limits.max_points)
        params = {"query": render(signal.query, service), "start": str(_ns(start)), "end": str(_ns(end)),
                  "step": f"{step}s"}
        body = self._get("/loki/api/v1/query_range", params)
        if (body.get("data") or {}).get("resultType") == "streams":
            raise UpstreamError(f"{self.what} returned log lines for metric signal {signal.name!r}: "
                                "use a LogQL metric query such as rate(...[1m]), or make it a log signal")
        series = parse_matrix(body, what=self.what, signal=signal, service=service, source=self.config.name,
                              max_points=limits.max_points)
        return cap_series(series, limits.max_series)

    def logs(self, signal: Signal, service: str | None, start: datetime, end: datetime, limit: int) -> list[LogLine]:
        """Return up to `limit` lines (and the connection's cap) in time order, following pages forward."""
        cap = max(0, min(limit, self.config.limits.max_lines))
        query = render(signal.query, service)
        lines: list[LogLine] = []
        seen: set[tuple] = set()
        cursor, end_ns = _ns(start), _ns(end)
        for _ in range(MAX_PAGES):
            if len(lines) >= cap or cursor >= end_ns:
                break
            page_size = min(PAGE, cap - len(lines))
            body = self._get("/loki/api/v1/query_range", {
                "query": query, "start": str(cursor), "end": str(end_ns), "limit": str(page_size),
                "direction": "forward"})
            data = body.get("data") or {}
            if data.get("resultType") not in (None, "streams"):
                raise UpstreamError(f"{self.what} returned {data.get('resultType')} for log signal {signal.name!r}: "
                                    "use a log query (a stream selector with filters), or make it a metric signal")
            entries = []
            for stream in data.get("result") or []:
                labels = tuple(sorted((str(k), str(v)) for k, v in (stream.get("stream") or {}).items()))
                for value in stream.get("values") or []:
                    entries.append((int(value[0]), str(value[1]), labels))
            entries.sort(key=lambda e: e[0])
            fresh = [e for e in entries if (e[0], e[1], e[2]) not in seen]
            for ts, text, labels in fresh:
                if len(lines) >= cap:
                    break
                seen.add((ts, text, labels))
                lines.append(LogLine(at=_at(ts), text=text, service=service, labels=labels, source=self.config.name))
            if len(entries) < page_size:
                break  # a short page is the last one
            # why: restart at the last timestamp (not past it) so lines sharing that nanosecond are not skipped;
            # the `seen` set drops the repeats; a full page all at the cursor's nanosecond moves on by one
            last = entries[-1][0]
            cursor = last if last > cursor else cursor + 1
        else:
            log.info("%s: %s stopped after %d pages", self.config.name, signal.name, MAX_PAGES)
        return lines


def check_query(provider: Provider, kind: str, query, loc: list) -> str:
    """Accept a LogQL string; a log signal's query starts with a stream selector."""
    query = string_query(provider, kind, query, loc)
    if kind == "log" and not query.lstrip().startswith("{"):
        raise fail(loc, 'a LogQL log query starts with a stream selector, e.g. {app="$service"}')
    return query


PROVIDER = Provider(
    name="loki", label="Loki", connector=LokiConnector,
    credential_fields=TOKEN_OR_BASIC, kinds=("metric", "log"),
    options={"tenant": Option(str, 1, 200)},
    endpoint=base_url("http://loki:3100"), credentials=token_or_basic, query=check_query,
    endpoint_help="base URL (http:// or https://)", credentials_help="token, or username and password",
    credentials_hint="a token, or a username and password",
    options_help="tenant (X-Scope-OrgID)")
