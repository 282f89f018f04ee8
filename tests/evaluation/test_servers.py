"""The local Prometheus and Loki server: the real connectors read scenario data from it over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from blametrail.errors import UpstreamError
from blametrail.integrations.common import ConnectorConfig, Limits, Signal, render
from blametrail.integrations.loki import LokiConnector, _ns
from blametrail.integrations.prometheus import PrometheusConnector
from blametrail.scenarios.generator import LOOKBACK, scenario
from blametrail.scenarios.servers import (
    LOG_QUERY,
    METRIC_QUERIES,
    ObservabilityServer,
    QueryError,
    parse_logql,
)


@pytest.fixture(scope="module")
def data():
    return [scenario("database_saturation", index=3), scenario("bad_deploy", index=4)]


@pytest.fixture(scope="module")
def server(data):
    with ObservabilityServer(data) as srv:
        yield srv


def _config(provider: str, url: str, **limits) -> ConnectorConfig:
    return ConnectorConfig(name=f"local-{provider}", provider=provider, endpoint=url, options={"verify_tls": False},
                           limits=Limits(timeout_seconds=10, **limits))


def _window(s):
    return s.started_at - LOOKBACK, s.resolved_at


def test_prometheus_connector_reads_every_signal_at_the_step(server, data):
    s = data[0]
    prom = PrometheusConnector(_config("prometheus", server.url))
    assert "version 2.53.0" in prom.test()
    start, end = _window(s)
    service = s.services[0]
    for name, query in METRIC_QUERIES.items():
        got = prom.metrics(Signal(name, "metric", query), service, start, end, 60)
        truth = next(m for m in s.series if m.name == name and m.service == service)
        assert len(got) == 1 and got[0].service == service and got[0].source == "local-prometheus"
        points = got[0].points
        assert len(points) == int((end - start).total_seconds() // 60) + 1
        assert points[0][0] == start and all(b[0] - a[0] == timedelta(seconds=60) for a, b in zip(points, points[1:]))
        for at, value in points[::17]:  # each step shows the latest sample at or before it
            expected = max((p for p in truth.points if p[0] <= at), key=lambda p: p[0])
            assert value == pytest.approx(expected[1])


def test_prometheus_step_and_post_and_unknown_queries(server, data):
    s = data[1]
    start, end = _window(s)
    query = render(METRIC_QUERIES["error_rate"], s.services[0])
    form = {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": "5m"}
    body = httpx.post(server.url + "/api/v1/query_range", data=form).json()
    assert body["status"] == "success" and body["data"]["resultType"] == "matrix"
    values = body["data"]["result"][0]["values"]
    assert values[1][0] - values[0][0] == 300 and isinstance(values[0][1], str)
    rfc = httpx.get(server.url + "/api/v1/query_range", params={**form, "start": start.isoformat(), "step": "300"})
    assert rfc.json()["data"]["result"][0]["values"] == values
    unknown = httpx.get(server.url + "/api/v1/query_range", params={**form, "query": 'up{service="nope"}'}).json()
    assert unknown == {"status": "success", "data": {"resultType": "matrix", "result": []}}
    bad = httpx.get(server.url + "/api/v1/query_range", params={**form, "step": "0"})
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
    fine = httpx.get(server.url + "/api/v1/query_range", params={**form, "step": "0.5"})
    assert fine.status_code == 400 and "exceeded maximum resolution" in fine.json()["error"]
    loki = LokiConnector(_config("loki", server.url))
    with pytest.raises(UpstreamError, match="rejected the query"):  # Loki answers a malformed query with 400
        loki.logs(Signal("logs", "log", '{service=""}'), None, start, end, 10)


def test_loki_connector_pages_forward_through_every_line(server, data, monkeypatch):
    monkeypatch.setattr("blametrail.integrations.loki.PAGE", 100)  # many pages from one scenario
    s = data[0]
    loki = LokiConnector(_config("loki", server.url, max_lines=10_000))
    assert "3 labels visible" in loki.test()
    start, end = _window(s)
    service = s.services[0]
    lines = loki.logs(Signal("logs", "log", LOG_QUERY), service, start, end, 5_000)
    expected = [g for g in s.logs if g.service == service and _ns(start) <= _ns(g.at) < _ns(end)]
    assert len(expected) > 300
    assert [(g.at, g.text) for g in lines] == [(g.at, g.text) for g in expected]
    assert dict(lines[0].labels) == {"service": service, "level": expected[0].level, "namespace": "production"}
    capped = loki.logs(Signal("logs", "log", LOG_QUERY), service, start, end, 250)
    assert [g.text for g in capped] == [g.text for g in expected[:250]]


def test_loki_direction_limit_filters_and_errors(server, data):
    s = data[1]
    service = s.services[0]
    marker = next(ev.ref for ev in s.truth.key_events if ev.kind == "log")
    start, end = _window(s)
    params = {"query": f'{{service="{service}", level="error"}} |= "{marker}" != "nothing"', "start": str(_ns(start)),
              "end": str(_ns(end)), "limit": "5"}
    body = httpx.get(server.url + "/loki/api/v1/query_range", params=params).json()
    assert body["status"] == "success" and body["data"]["resultType"] == "streams"
    [stream] = body["data"]["result"]
    assert stream["stream"]["level"] == "error" and len(stream["values"]) == 5
    stamps = [int(ns) for ns, _ in stream["values"]]
    assert stamps == sorted(stamps, reverse=True)  # backward by default: the newest first
    assert all(marker in line for _, line in stream["values"])
    forward = httpx.get(server.url + "/loki/api/v1/query_range", params={**params, "direction": "forward"}).json()
    first = [int(ns) for ns, _ in forward["data"]["result"][0]["values"]]
    assert first == sorted(first) and first[-1] < stamps[-1]
    regex = httpx.get(server.url + "/loki/api/v1/query_range", params={
        **params, "query": f'{{service=~"{service[:4]}.*", level!="error"}} |~ "(?i)slow"', "limit": "1000"}).json()
    assert all(r["stream"]["level"] == "warn" for r in regex["data"]["result"])
    too_many = httpx.get(server.url + "/loki/api/v1/query_range", params={**params, "limit": "5001"})
    assert too_many.status_code == 400 and "max entries limit" in too_many.text
    metric = httpx.get(server.url + "/loki/api/v1/query_range", params={**params, "query": 'rate({app="x"}[1m])'})
    assert metric.status_code == 400
    assert httpx.get(server.url + "/ready").text == "ready\n"


def test_logql_parsing():
    matchers, filters = parse_logql('{service="a\\"b", level=~"error|warn"} |= "x" !~ `y+`')
    assert matchers == [("service", "=", 'a"b'), ("level", "=~", "error|warn")]
    assert [f("x z") for f in filters] == [True, True] and [f("xyy") for f in filters] == [True, False]
    for bad in ('rate({a="b"}[1m])', '{a=""}', '{a="b"} | json'):
        with pytest.raises(QueryError):
            parse_logql(bad)
