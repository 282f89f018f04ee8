"""The Datadog connector, through the official client, against a local server replaying Datadog's responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug import Request, Response

pytest.importorskip("datadog_api_client", reason="the datadog extra is not installed")

from blametrail.errors import UpstreamError  # noqa: E402
from blametrail.integrations.common import Signal  # noqa: E402
from blametrail.integrations.datadog import DatadogConnector, api_host  # noqa: E402
from tests.integrations.conftest import free_port, make_config  # noqa: E402

START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)
MS = int(START.timestamp() * 1000)
API_KEY, APP_KEY = "dd-api-0123456789abcdef", "dd-app-fedcba9876543210"

# GET /api/v1/query, as Datadog answers (fields trimmed to those a real answer always carries)
METRICS = {
    "status": "ok", "res_type": "time_series", "resp_version": 1,
    "query": "sum:trace.http.request.errors{service:checkout}.as_count()",
    "from_date": MS, "to_date": MS + 1_800_000, "group_by": ["resource_name"], "message": "",
    "series": [
        {"unit": [{"family": "general", "scale_factor": 1.0, "name": "error", "short_name": None, "plural": "errors",
                   "id": 41}, None],
         "query_index": 0, "aggr": "sum", "metric": "trace.http.request.errors",
         "tag_set": ["resource_name:post_/pay", "service:checkout"],
         "expression": "sum:trace.http.request.errors{resource_name:post_/pay,service:checkout}.as_count()",
         "scope": "resource_name:post_/pay,service:checkout", "interval": 60, "length": 3,
         "start": MS, "end": MS + 179_999,
         "pointlist": [[float(MS), 1.0], [float(MS + 60_000), None], [float(MS + 120_000), 42.0]],
         "display_name": "trace.http.request.errors", "attributes": {}},
        {"unit": None, "query_index": 0, "aggr": "sum", "metric": "trace.http.request.errors",
         "tag_set": ["resource_name:get_/cart", "service:checkout"],
         "expression": "sum:trace.http.request.errors{resource_name:get_/cart,service:checkout}.as_count()",
         "scope": "resource_name:get_/cart,service:checkout", "interval": 60, "length": 1,
         "start": MS, "end": MS + 59_999, "pointlist": [[float(MS), 0.0]],
         "display_name": "trace.http.request.errors", "attributes": {}},
    ],
    "values": [], "times": [],
}


def log_event(i: int, minute: int, message: str, status: str = "error") -> dict:
    """One event of POST /api/v2/logs/events/search."""
    at = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"id": f"AQAAAZL{i:012d}", "type": "log",
            "attributes": {"service": "checkout", "host": "i-0a1b2c3d", "status": status, "timestamp": at,
                           "message": message, "tags": ["env:prod", "service:checkout"],
                           "attributes": {"http": {"status_code": 500}, "duration": 1204}}}


LOGS_PAGE_1 = {
    "data": [log_event(1, 1, "payment client: connection pool exhausted (max=5)"),
             log_event(2, 2, "payment client: connection pool exhausted (max=5)")],
    "meta": {"page": {"after": "eyJhZnRlciI6IkFRQUFBWkwwMDAwMDAwMDAwMDIifQ"}, "elapsed": 131,
             "request_id": "pddv1ChZXSmF1b0RtV1NGaTZYQ2ZUX0xoNFpRIi0KHQ", "status": "done"},
    "links": {"next": "https://api.datadoghq.com/api/v2/logs/events?page%5Bcursor%5D=eyJhZnRlciI6IkFRQUFBWkwwMDAwMDAwMDAwMDIifQ"},
}
LOGS_PAGE_2 = {
    "data": [log_event(3, 3, "checkout: upstream timeout after 30000 ms")],
    "meta": {"elapsed": 88, "request_id": "pddv1ChZXSmF1b0RtV1NGaTZYQ2ZUX0xoNFpRIi0KHR", "status": "done"},
}


@pytest.fixture
def datadog(httpserver):
    """A Datadog API: validate, metric query, log search with a cursor for page 2; requests are recorded."""
    seen: list[dict] = []

    def record(request: Request) -> dict:
        entry = {"path": request.path, "args": request.args.to_dict(), "api_key": request.headers.get("DD-API-KEY"),
                 "app_key": request.headers.get("DD-APPLICATION-KEY"),
                 "body": json.loads(request.data) if request.data else None}
        seen.append(entry)
        return entry

    def search(request: Request) -> Response:
        body = record(request)["body"]
        page = LOGS_PAGE_2 if (body.get("page") or {}).get("cursor") else LOGS_PAGE_1
        return Response(json.dumps(page), content_type="application/json")

    def query(request: Request) -> Response:
        record(request)
        return Response(json.dumps(METRICS), content_type="application/json")

    def validate(request: Request) -> Response:
        record(request)
        return Response(json.dumps({"valid": True}), content_type="application/json")

    httpserver.expect_request("/api/v1/query", method="GET").respond_with_handler(query)
    httpserver.expect_request("/api/v2/logs/events/search", method="POST").respond_with_handler(search)
    httpserver.expect_request("/api/v1/validate", method="GET").respond_with_handler(validate)
    httpserver.seen = seen
    return httpserver


def connector(server, kinds=("metric",), **kwargs) -> DatadogConnector:
    return DatadogConnector(make_config("datadog", server.url_for("/").rstrip("/"), name="datadog-prod",
                                        credentials={"api_key": API_KEY, "app_key": APP_KEY}, kinds=kinds, **kwargs))


def test_sites_and_urls_become_api_hosts():
    assert api_host("") == "https://api.datadoghq.com"
    assert api_host("datadoghq.eu") == "https://api.datadoghq.eu"
    assert api_host("us5.datadoghq.com") == "https://api.us5.datadoghq.com"
    assert api_host("http://127.0.0.1:8126/") == "http://127.0.0.1:8126"


def test_metric_query_through_the_official_client(datadog):
    signal = Signal("errors", "metric", "sum:trace.http.request.errors{service:$service} by {resource_name}.as_count()")
    series = connector(datadog).metrics(signal, "checkout", START, END, 60)
    request = datadog.seen[0]
    assert request["path"] == "/api/v1/query"
    assert request["args"]["query"] == "sum:trace.http.request.errors{service:checkout} by {resource_name}.as_count()"
    assert request["args"]["from"] == str(int(START.timestamp()))
    assert (request["api_key"], request["app_key"]) == (API_KEY, APP_KEY)
    assert len(series) == 2
    top = series[0]
    assert top.name == "errors" and top.service == "checkout" and top.source == "datadog-prod"
    assert top.points == ((START, 1.0), (START + timedelta(minutes=2), 42.0))  # the null point is dropped
    assert dict(top.labels) == {"resource_name": "post_/pay", "service": "checkout"}
    assert top.unit == "error"


def test_log_search_follows_the_cursor(datadog):
    signal = Signal("checkout_errors", "log", "service:$service status:error")
    lines = connector(datadog, kinds=("log",)).logs(signal, "checkout", START, END, 100)
    assert [line.text for line in lines] == [
        "payment client: connection pool exhausted (max=5)", "payment client: connection pool exhausted (max=5)",
        "checkout: upstream timeout after 30000 ms"]
    assert lines[0].at == START + timedelta(minutes=1) and lines[0].at.tzinfo is not None
    assert dict(lines[0].labels) == {"service": "checkout", "host": "i-0a1b2c3d", "status": "error"}
    first, second = (s["body"] for s in datadog.seen)
    assert first["filter"] == {"query": "service:checkout status:error", "from": "2026-11-26T10:00:00.000Z",
                               "to": "2026-11-26T10:30:00.000Z"}
    assert first["sort"] == "timestamp" and "cursor" not in first["page"]
    assert second["page"]["cursor"] == LOGS_PAGE_1["meta"]["page"]["after"]


def test_log_limit_stops_paging(datadog):
    lines = connector(datadog, kinds=("log",)).logs(Signal("l", "log", "service:x"), None, START, END, 2)
    assert len(lines) == 2 and len(datadog.seen) == 1 and datadog.seen[0]["body"]["page"]["limit"] == 2


def test_test_validates_both_keys(datadog):
    message = connector(datadog, kinds=("metric", "log")).test()
    assert message.endswith("accepted the API and application keys")
    assert [s["path"] for s in datadog.seen] == ["/api/v1/validate", "/api/v1/query", "/api/v2/logs/events/search"]


def test_403_names_the_scopes(httpserver):
    httpserver.expect_request("/api/v1/query").respond_with_json({"errors": ["Forbidden"]}, status=403)
    with pytest.raises(UpstreamError) as caught:
        connector(httpserver).metrics(Signal("e", "metric", "avg:system.load.1{*}"), None, START, END, 60)
    message = str(caught.value)
    assert message.startswith(f"Datadog at {httpserver.url_for('/').rstrip('/')} answered forbidden (403)")
    assert "application key" in message  # the body stays out (issue 11, F7)


def test_400_shows_the_query_error(httpserver):
    httpserver.expect_request("/api/v2/logs/events/search").respond_with_json(
        {"errors": ["Invalid query: unexpected token ')' at position 17"]}, status=400)
    with pytest.raises(UpstreamError, match=r"rejected the query \(400\): Invalid query: unexpected token"):
        connector(httpserver).logs(Signal("l", "log", "service:x)"), None, START, END, 10)


def test_401_and_429(httpserver):
    httpserver.expect_request("/api/v1/validate").respond_with_json({"errors": ["Unauthorized"]}, status=401)
    with pytest.raises(UpstreamError, match=r"rejected the API key \(401\)"):
        connector(httpserver).test()
    httpserver.clear()
    httpserver.expect_request("/api/v1/query").respond_with_json(
        {"errors": ["Rate limit of 1600 requests in 3600 seconds reached."]}, status=429,
        headers={"X-RateLimit-Reset": "42", "X-RateLimit-Limit": "1600"})
    with pytest.raises(UpstreamError) as caught:
        connector(httpserver).metrics(Signal("e", "metric", "avg:x{*}"), None, START, END, 60)
    assert str(caught.value).endswith("rate-limited the request (429); retry after 42 s")


def test_unreachable_and_timeout(slow_server):
    url = f"http://127.0.0.1:{free_port()}"
    config = make_config("datadog", url, credentials={"api_key": "a", "app_key": "b"})
    with pytest.raises(UpstreamError, match="could not be reached: connection refused"):
        DatadogConnector(config).test()
    config = make_config("datadog", slow_server, credentials={"api_key": "a", "app_key": "b"}, timeout=0.3)
    with pytest.raises(UpstreamError, match=r"timed out after 0\.3 s"):
        DatadogConnector(config).metrics(Signal("e", "metric", "avg:x{*}"), None, START, END, 60)
