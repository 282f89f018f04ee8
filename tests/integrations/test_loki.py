"""The Loki connector against a local server replaying Loki's recorded response shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug import Request, Response

from blametrail.errors import UpstreamError
from blametrail.integrations import loki as loki_module
from blametrail.integrations.common import Signal
from blametrail.integrations.loki import LokiConnector
from tests.integrations.conftest import free_port, make_config

START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)


def ns(dt: datetime) -> str:
    return str(int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000)


def streams(entries: list[tuple[dict, list[tuple[datetime, str]]]]) -> dict:
    """A `query_range` answer as Loki 2.9/3.x sends it for a log query."""
    return {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [{"stream": labels, "values": [[ns(at), line] for at, line in values]}
                       for labels, values in entries],
            "stats": {"summary": {"bytesProcessedPerSecond": 18046, "linesProcessedPerSecond": 301,
                                  "totalBytesProcessed": 1232, "totalLinesProcessed": 20, "execTime": 0.066,
                                  "queueTime": 0.000102, "subqueries": 0, "totalEntriesReturned": 3}},
        },
    }


LABELS_API = {"status": "success", "data": ["__name__", "app", "container", "namespace", "pod"]}
APP = {"app": "checkout", "namespace": "prod", "pod": "checkout-7d9f"}
WORKER = {"app": "checkout", "namespace": "prod", "pod": "checkout-worker-1"}
T = [START + timedelta(minutes=i) for i in range(8)]
STORED = [  # what this Loki holds; two lines share T[2] to exercise the page boundary
    (APP, T[0], 'level=info msg="started"'),
    (WORKER, T[1], 'level=warn msg="slow query"'),
    (APP, T[2], 'level=error msg="pool exhausted"'),
    (WORKER, T[2], 'level=error msg="pool exhausted" worker=1'),
    (WORKER, T[3], 'level=info msg="retry"'),
    (APP, T[4], 'level=error msg="timeout"'),
]


def answer(start_ns: int, end_ns: int, limit: int) -> dict:
    """Answer like Loki with direction=forward: the first `limit` entries in [start, end), grouped by stream."""
    picked = sorted((e for e in STORED if start_ns <= int(ns(e[1])) < end_ns), key=lambda e: e[1])[:limit]
    grouped: dict[str, tuple[dict, list]] = {}
    for labels, at, line in picked:
        grouped.setdefault(json.dumps(labels, sort_keys=True), (labels, []))[1].append((at, line))
    return streams(list(grouped.values()))


@pytest.fixture
def loki(httpserver):
    """A Loki serving STORED page by page, recording every request's parameters and headers."""
    seen: list[dict] = []

    def query_range(request: Request) -> Response:
        args = request.args.to_dict()
        seen.append({**args, "tenant": request.headers.get("X-Scope-OrgID"),
                     "auth": request.headers.get("Authorization")})
        body = answer(int(args["start"]), int(args["end"]), int(args["limit"]))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/loki/api/v1/query_range").respond_with_handler(query_range)
    httpserver.expect_request("/loki/api/v1/labels").respond_with_json(LABELS_API)
    httpserver.seen = seen
    return httpserver


def connector(server, **kwargs) -> LokiConnector:
    return LokiConnector(make_config("loki", server.url_for("/").rstrip("/"), name="prod-loki", **kwargs))


def test_logs_follow_pages_forward_in_time_and_template_the_service(loki, monkeypatch):
    monkeypatch.setattr(loki_module, "PAGE", 3)
    c = connector(loki, options={"tenant": "team-a"}, credentials={"token": "glc_secret"})
    signal = Signal(name="checkout_logs", kind="log", query='{app="$service"} |= "level="')
    lines = c.logs(signal, "checkout", START, END, limit=100)
    assert [line.text for line in lines] == [text for _, _, text in STORED]
    assert [line.at for line in lines] == [at for _, at, _ in STORED]
    assert lines[0].service == "checkout" and lines[0].source == "prod-loki"
    assert dict(lines[1].labels)["pod"] == "checkout-worker-1"
    assert [(r["start"], r["limit"]) for r in loki.seen] == [(ns(START), "3"), (ns(T[2]), "3"), (ns(T[3]), "3")]
    first = loki.seen[0]
    assert first["query"] == '{app="checkout"} |= "level="'
    assert first["direction"] == "forward" and first["end"] == ns(END)
    assert first["tenant"] == "team-a" and first["auth"] == "Bearer glc_secret"


def test_page_size_is_the_limit_and_the_limit_is_honoured(loki):
    lines = connector(loki).logs(Signal("l", "log", '{app="$service"}'), "checkout", START, END, limit=3)
    assert len(lines) == 3 and len(loki.seen) == 1 and loki.seen[0]["limit"] == "3"


def test_connection_cap_wins_over_a_larger_limit(loki):
    lines = connector(loki, max_lines=4).logs(Signal("l", "log", "{app=\"x\"}"), None, START, END, limit=1000)
    assert len(lines) == 4


def test_service_is_escaped_in_logql(loki):
    connector(loki).logs(Signal("l", "log", '{app="$service"}'), 'a"b\\c', START, END, limit=10)
    assert loki.seen[0]["query"] == '{app="a\\"b\\\\c"}'


def test_test_lists_labels(loki):
    assert connector(loki, options={"tenant": "t1"}).test().endswith("for tenant t1; 5 labels visible")


def test_metric_query_reads_a_matrix(httpserver):
    httpserver.expect_request("/loki/api/v1/query_range").respond_with_json({
        "status": "success",
        "data": {"resultType": "matrix", "result": [
            {"metric": {"app": "checkout"}, "values": [[T[0].timestamp(), "0.5"], [T[1].timestamp(), "4.25"]]}],
            "stats": {}}})
    series = connector(httpserver).metrics(Signal("errors", "metric", 'sum(rate({app="$service"} |= "error" [1m]))'),
                                           "checkout", START, END, 60)
    assert series[0].points == ((T[0], 0.5), (T[1], 4.25))
    assert httpserver.log[0][0].args["step"] == "60s"


def test_401_says_the_credentials_were_rejected(httpserver):
    httpserver.expect_request("/loki/api/v1/labels").respond_with_data("no org id\n", status=401)
    with pytest.raises(UpstreamError) as caught:
        connector(httpserver).test()
    assert "rejected the credentials (401)" in str(caught.value)
    assert str(caught.value).startswith(f"Loki at {httpserver.url_for('/').rstrip('/')}")


def test_429_passes_on_retry_after(httpserver):
    httpserver.expect_request("/loki/api/v1/query_range").respond_with_data(
        "Ingestion rate limit exceeded", status=429, headers={"Retry-After": "17"})
    with pytest.raises(UpstreamError) as caught:
        connector(httpserver).logs(Signal("l", "log", '{app="x"}'), None, START, END, 10)
    assert str(caught.value).endswith("rate-limited the request (429); retry after 17 s")


def test_bad_logql_shows_lokis_parse_error(httpserver):
    httpserver.expect_request("/loki/api/v1/query_range").respond_with_data(
        'parse error at line 1, col 7: syntax error: unexpected IDENTIFIER, expecting STRING\n', status=400)
    with pytest.raises(UpstreamError) as caught:
        connector(httpserver).logs(Signal("l", "log", "{app=checkout}"), None, START, END, 10)
    assert "rejected the query (400): parse error at line 1, col 7" in str(caught.value)


def test_unreachable_and_timeout(slow_server):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamError, match="could not be reached: connection refused"):
        LokiConnector(make_config("loki", url)).test()
    with pytest.raises(UpstreamError, match=r"timed out after 0\.2 s"):
        LokiConnector(make_config("loki", slow_server, timeout=0.2)).test()


def test_html_instead_of_the_api_says_check_the_url(httpserver):
    httpserver.expect_request("/loki/api/v1/labels").respond_with_data("<html>Grafana</html>", content_type="text/html")
    with pytest.raises(UpstreamError, match="not JSON"):
        connector(httpserver).test()
