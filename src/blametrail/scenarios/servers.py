"""A local HTTP server speaking the Prometheus and Loki query APIs, answering from scenario data (stdlib only)."""

from __future__ import annotations

import bisect
import json
import math
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from blametrail.integrations.common import render
from blametrail.scenarios.generator import Scenario

# The queries an operator would configure; `$service` is filled in by the connectors.
METRIC_QUERIES = {
    "error_rate": 'sum(rate(http_requests_total{service="$service",code=~"5.."}[5m])) / '
                  'sum(rate(http_requests_total{service="$service"}[5m]))',
    "latency_p99": 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
                   '{service="$service"}[5m])))',
    "request_rate": 'sum(rate(http_requests_total{service="$service"}[5m]))',
    "memory_working_set_bytes": 'sum(container_memory_working_set_bytes{container="$service"})',
    "db_connections": 'sum(pg_stat_activity_count{datname="$service"})',
}
LOG_QUERY = '{service="$service", level=~"error|warn"}'
LOOKBACK_DELTA = 300.0  # seconds: Prometheus uses the latest sample at most this old
MAX_RESOLUTION = 11_000  # points per series, as Prometheus enforces
MAX_ENTRIES = 5_000  # Loki's default max_entries_limit_per_query
_LABEL_VALUE = re.compile(r'(?:service|container|datname)="((?:[^"\\]|\\.)*)"')
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)')


class QueryError(ValueError):
    """A query or parameter the real server would reject with 400."""


class Store:
    """Scenario series and log lines, indexed by service (service names are unique per scenario)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], tuple[list[float], list[float]]] = {}  # (name, service) -> (times, values)
        self.logs: dict[str, tuple[list[int], list[tuple[int, dict, str]]]] = {}  # service -> (ns list, entries)
        self.labels: set[str] = {"service", "level", "namespace"}

    def add(self, scenario: Scenario) -> None:
        """Serve a scenario's series and log lines (merged in time with earlier scenarios of the same service: the
        incidents of a recurring family happen on one service on different days)."""
        for m in scenario.series:
            points = [(t.timestamp(), v) for t, v in m.points]
            if (m.name, m.service) in self.series:
                times, values = self.series[(m.name, m.service)]
                points = sorted([*zip(times, values, strict=True), *points])
            self.series[(m.name, m.service)] = ([t for t, _ in points], [v for _, v in points])
        by_service: dict[str, list[tuple[int, dict, str]]] = {}
        for g in scenario.logs:
            labels = {"service": g.service, "level": g.level, "namespace": "production"}
            by_service.setdefault(g.service, []).append((_ns(g.at), labels, g.text))
        for service, entries in by_service.items():
            entries += self.logs.get(service, ((), []))[1]
            entries.sort(key=lambda e: e[0])
            self.logs[service] = ([e[0] for e in entries], entries)

    # Prometheus -------------------------------------------------------------------------------------------------

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict]:
        """Evaluate one of METRIC_QUERIES over [start, end] every step, as a matrix result."""
        if end < start:
            raise QueryError("end timestamp must not be before start time")
        if step <= 0:
            raise QueryError("zero or negative query resolution step widths are not accepted. "
                             "Try a positive integer")
        if (end - start) / step > MAX_RESOLUTION:
            raise QueryError(f"exceeded maximum resolution of {MAX_RESOLUTION:,} points per timeseries. "
                             "Try decreasing the query resolution (?step=XX)")
        found = _LABEL_VALUE.search(query)
        service = _unescape(found.group(1)) if found else None
        name = next((n for n, q in METRIC_QUERIES.items() if service is not None and render(q, service) == query), None)
        data = self.series.get((name, service)) if name else None
        if data is None:
            return []  # an unknown series is an empty result, not an error
        times, values = data
        out = []
        t = start
        while t <= end + 1e-9:
            i = bisect.bisect_right(times, t) - 1
            if i >= 0 and t - times[i] <= LOOKBACK_DELTA:
                out.append([_prom_time(t), _prom_value(values[i])])
            t += step
        return [{"metric": {}, "values": out}] if out else []

    # Loki -------------------------------------------------------------------------------------------------------

    def streams(self, query: str, start_ns: int, end_ns: int, limit: int, direction: str) -> list[dict]:
        """Select log lines with a LogQL stream selector and line filters over [start, end), as streams."""
        if limit > MAX_ENTRIES:
            raise QueryError("max entries limit per query exceeded, limit > max_entries_limit "
                             f"({limit} > {MAX_ENTRIES})")
        if end_ns < start_ns:
            raise QueryError("end timestamp must not be before or equal to start time")
        matchers, filters = parse_logql(query)
        exact = _exact(matchers, "service")
        services = [exact] if exact in self.logs else [] if exact else [
            s for s in self.logs if _matches(matchers, {"service": s}, only="service")]
        picked: list[tuple[int, dict, str]] = []
        for service in services:
            times, entries = self.logs[service]
            lo, hi = bisect.bisect_left(times, start_ns), bisect.bisect_left(times, end_ns)
            picked += [e for e in entries[lo:hi] if _matches(matchers, e[1]) and all(f(e[2]) for f in filters)]
        picked.sort(key=lambda e: e[0], reverse=direction == "backward")
        picked = picked[:limit]
        grouped: dict[tuple, dict] = {}
        for ns, labels, text in picked:
            key = tuple(sorted(labels.items()))
            grouped.setdefault(key, {"stream": dict(labels), "values": []})["values"].append([str(ns), text])
        return list(grouped.values())


def parse_logql(query: str) -> tuple[list[tuple[str, str, str]], list]:
    """Parse `{label="v", other=~"re"} |= "text" != "x" |~ "re"` into matchers and line filter functions."""
    text = query.strip()
    if not text.startswith("{"):
        raise QueryError("parse error : only log queries (a stream selector with line filters) are served here")
    close = text.find("}")
    if close < 0:
        raise QueryError("parse error : unclosed stream selector")
    body, rest = text[1:close], text[close + 1:]
    matchers, pos = [], 0
    while pos < len(body.strip()):
        m = _MATCHER.match(body, pos)
        if not m:
            raise QueryError(f"parse error : unexpected {body[pos:pos + 20]!r} in the stream selector")
        matchers.append((m.group(1), m.group(2), _unescape(m.group(3))))
        pos = m.end()
    if not any(op in ("=", "=~") and value for _, op, value in matchers):
        raise QueryError("parse error : queries require at least one regexp or equality matcher that does not "
                         "have an empty-compatible value")
    filters, pos = [], 0
    while rest[pos:].strip():
        m = _FILTER.match(rest, pos)
        if not m:
            raise QueryError(f"parse error : unexpected {rest[pos:pos + 20]!r} after the stream selector")
        op, value = m.group(1), _unescape(m.group(2)) if m.group(2) is not None else m.group(3)
        if op in ("|~", "!~"):
            pattern = re.compile(value)
            filters.append((lambda line, p=pattern: p.search(line) is not None) if op == "|~"
                           else (lambda line, p=pattern: p.search(line) is None))
        else:
            filters.append((lambda line, v=value: v in line) if op == "|=" else (lambda line, v=value: v not in line))
        pos = m.end()
    return matchers, filters


def _matches(matchers: Iterable[tuple[str, str, str]], labels: dict, only: str | None = None) -> bool:
    """Tell whether labels satisfy the matchers (all of them, or only those on one label); a missing label is ""."""
    for name, op, value in matchers:
        if only is not None and name != only:
            continue
        have = labels.get(name, "")
        ok = (have == value if op == "=" else have != value if op == "!=" else
              re.fullmatch(value, have) is not None if op == "=~" else re.fullmatch(value, have) is None)
        if not ok:
            return False
    return True


def _exact(matchers, label: str) -> str | None:
    return next((value for name, op, value in matchers if name == label and op == "="), None)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), value)


def _ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def _prom_time(t: float) -> float | int:
    return int(t) if t == int(t) else round(t, 3)


def _prom_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if abs(v) < 1e15 else f"{v:.17g}"


def _seconds(raw: str | None, what: str) -> float:
    """Parse a Prometheus time: Unix seconds (fractions allowed) or RFC 3339."""
    if raw is None or raw == "":
        raise QueryError(f'invalid parameter "{what}": cannot parse "" to a valid timestamp')
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise QueryError(f'invalid parameter "{what}": cannot parse "{raw}" to a valid timestamp') from None


def _duration(raw: str | None) -> float:
    """Parse a Prometheus step: float seconds or a duration such as 60s, 1m, 1m30s."""
    if not raw:
        raise QueryError('invalid parameter "step": cannot parse "" to a valid duration')
    try:
        return float(raw)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise QueryError(f'invalid parameter "step": cannot parse "{raw}" to a valid duration')
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * scale[u] for n, u in parts)


def _loki_ns(raw: str | None, default: int) -> int:
    """Parse a Loki time: Unix nanoseconds, Unix seconds (with fractions) or RFC 3339."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
        return value if value > 10**12 else value * 1_000_000_000
    except ValueError:
        pass
    try:
        return int(float(raw) * 1_000_000_000)
    except ValueError:
        pass
    try:
        return _ns(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise QueryError(f"could not parse {raw!r} as a timestamp") from None


class _Handler(BaseHTTPRequestHandler):
    server: ObservabilityServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # why: headers and body go out in two writes; Nagle would hold the body ~40 ms

    def log_message(self, *args) -> None:  # why: an evaluation sends thousands of requests
        pass

    def _send(self, status: int, body: dict | str) -> None:
        raw = (json.dumps(body, separators=(",", ":")) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _params(self) -> tuple[str, dict[str, str]]:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            form = self.rfile.read(length).decode() if length else ""
            params.update({k: v[-1] for k, v in parse_qs(form, keep_blank_values=True).items()})
        return url.path, params

    def do_GET(self) -> None:  # noqa: N802
        path, params = self._params()
        self.server.requests.append((self.command, path, params))
        store = self.server.store
        try:
            if path == "/api/v1/status/buildinfo":
                self._send(200, {"status": "success", "data": {"version": "2.53.0", "revision": "blametrail-local",
                                                                "branch": "HEAD", "goVersion": "go1.22.5"}})
            elif path == "/api/v1/query":
                now = _seconds(params.get("time") or str(datetime.now(UTC).timestamp()), "time")
                query = params.get("query", "")
                if query.strip() == "1":
                    self._send(200, {"status": "success", "data": {"resultType": "scalar", "result": [now, "1"]}})
                else:
                    result = store.query_range(query, now, now, 60)
                    self._send(200, {"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": s["metric"], "value": s["values"][-1]} for s in result]}})
            elif path == "/api/v1/query_range":
                result = store.query_range(params.get("query", ""), _seconds(params.get("start"), "start"),
                                           _seconds(params.get("end"), "end"), _duration(params.get("step")))
                self._send(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})
            elif path == "/ready":
                self._send(200, "ready\n")
            elif path == "/loki/api/v1/labels":
                self._send(200, {"status": "success", "data": sorted(store.labels)})
            elif path == "/loki/api/v1/query_range":
                end = _loki_ns(params.get("end"), _ns(datetime.now(UTC)))
                start = _loki_ns(params.get("start"), end - 3600 * 1_000_000_000)
                direction = params.get("direction", "backward").lower()
                if direction not in ("forward", "backward"):
                    raise QueryError(f"invalid direction {direction!r}")
                result = store.streams(params.get("query", ""), start, end, int(params.get("limit") or 100), direction)
                self._send(200, {"status": "success", "data": {"resultType": "streams", "result": result,
                                                               "stats": {}}})
            else:
                self._send(404, "404 page not found\n")
        except QueryError as exc:
            if path.startswith("/loki/"):
                self._send(400, f"{exc}\n")
            else:
                self._send(400, {"status": "error", "errorType": "bad_data", "error": str(exc)})
        except (re.error, ValueError) as exc:
            self._send(400, {"status": "error", "errorType": "bad_data", "error": str(exc)})

    do_POST = do_GET  # noqa: N815 — Prometheus accepts form-encoded POSTs for queries


class ObservabilityServer(ThreadingHTTPServer):
    """Serve Prometheus (`/api/v1/…`) and Loki (`/loki/api/v1/…`) on 127.0.0.1 and a free port, in a thread."""

    daemon_threads = True

    def __init__(self, scenarios: Iterable[Scenario] = ()) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = Store()
        self.requests: list[tuple[str, str, dict]] = []
        for s in scenarios:
            self.store.add(s)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, scenario: Scenario) -> None:
        """Serve one more scenario."""
        self.store.add(scenario)

    def start(self) -> ObservabilityServer:
        self._thread = threading.Thread(target=self.serve_forever, name="observability-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ObservabilityServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["LOG_QUERY", "METRIC_QUERIES", "ObservabilityServer", "QueryError", "Store", "parse_logql"]
