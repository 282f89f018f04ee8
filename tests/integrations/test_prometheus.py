"""The Prometheus connector against a real Prometheus (Debian package) scraping a tiny local exporter."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from blametrail.errors import UpstreamError
from blametrail.integrations.common import Signal
from blametrail.integrations.prometheus import PrometheusConnector
from tests.integrations.conftest import free_port, make_config

WEIRD = 'we"ird\\svc'  # a service name that must be escaped inside a PromQL string


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path:
        return path
    reason = "the prometheus binary is not installed (scripts/test-setup.sh or apt-get install prometheus)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI is set, so this is a failure, not a skip")
    pytest.skip(reason)


class _Exporter(BaseHTTPRequestHandler):
    scrapes = 0
    lock = threading.Lock()

    def do_GET(self):  # noqa: N802
        with _Exporter.lock:
            _Exporter.scrapes += 1
            n = _Exporter.scrapes
        label = WEIRD.replace("\\", "\\\\").replace('"', '\\"')  # the exposition format's own escaping
        body = (
            "# HELP bt_requests_total Requests served.\n# TYPE bt_requests_total counter\n"
            f'bt_requests_total{{service="checkout",code="200"}} {n * 10}\n'
            f'bt_requests_total{{service="checkout",code="500"}} {n * 3}\n'
            f'bt_requests_total{{service="{label}",code="200"}} {n}\n'
            "# HELP bt_ratio A gauge that is sometimes NaN.\n# TYPE bt_ratio gauge\n"
            'bt_ratio{service="checkout"} NaN\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus on a free port, scraping the exporter every second, with a few samples stored."""
    binary = _prometheus_binary()
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    exporter.daemon_threads = True
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    tmp = tmp_path_factory.mktemp("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.server_address[1]}']\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {(tmp / 'prometheus.log').read_text()[-2000:]}")
            try:
                r = httpx.get(f"{url}/api/v1/query", params={"query": "count_over_time(bt_requests_total[1m])"},
                              timeout=2)
                result = r.json()["data"]["result"] if r.status_code == 200 else []
                if result and min(float(x["value"][1]) for x in result) >= 4:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("prometheus did not store 4 scrapes within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        exporter.shutdown()
        exporter.server_close()


def _window():
    end = datetime.now(UTC)
    return end - timedelta(minutes=2), end


def test_test_reports_the_version(prometheus):
    message = PrometheusConnector(make_config("prometheus", prometheus)).test()
    assert "version 2." in message and prometheus in message


def test_query_range_returns_series_with_points(prometheus):
    connector = PrometheusConnector(make_config("prometheus", prometheus, name="prod-prom", timeout=2.5))
    signal = Signal(name="requests", kind="metric", query='bt_requests_total{service="$service"}', unit="req")
    start, end = _window()
    series = connector.metrics(signal, "checkout", start, end, 1)
    assert {dict(s.labels)["code"] for s in series} == {"200", "500"}
    for s in series:
        assert s.name == "requests" and s.service == "checkout" and s.unit == "req" and s.source == "prod-prom"
        assert len(s.points) >= 3
        times = [t for t, _ in s.points]
        assert times == sorted(times) and all(t.tzinfo is not None for t in times)
        values = [v for _, v in s.points]
        assert values == sorted(values) and values[-1] > values[0]  # a counter that grows with every scrape


def test_service_with_quotes_and_backslashes_is_escaped(prometheus):
    connector = PrometheusConnector(make_config("prometheus", prometheus))
    signal = Signal(name="requests", kind="metric", query='bt_requests_total{service="${service}"}')
    start, end = _window()
    series = connector.metrics(signal, WEIRD, start, end, 1)
    assert len(series) == 1 and dict(series[0].labels)["service"] == WEIRD


def test_nan_points_are_dropped(prometheus):
    connector = PrometheusConnector(make_config("prometheus", prometheus))
    start, end = _window()
    series = connector.metrics(Signal("ratio", "metric", 'bt_ratio{service="$service"}'), "checkout", start, end, 1)
    assert len(series) == 1 and series[0].points == ()


def test_series_and_points_are_capped(prometheus):
    connector = PrometheusConnector(make_config("prometheus", prometheus, max_series=1, max_points=10))
    start, end = _window()
    series = connector.metrics(Signal("requests", "metric", 'bt_requests_total{service="$service"}'), "checkout",
                               start, end, 1)
    assert len(series) == 1 and dict(series[0].labels)["code"] == "200"  # the highest peak is kept
    assert 1 <= len(series[0].points) <= 11  # step coarsened to 12 s over 2 minutes


def test_bad_promql_names_the_query_error(prometheus):
    connector = PrometheusConnector(make_config("prometheus", prometheus))
    start, end = _window()
    with pytest.raises(UpstreamError) as caught:
        connector.metrics(Signal("broken", "metric", "sum(rate(bt_requests_total[1m])"), None, start, end, 15)
    message = str(caught.value)
    assert f"Prometheus at {prometheus} rejected the query (400)" in message
    assert "parse error" in message


def test_unreachable_port_says_could_not_be_reached():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamError) as caught:
        PrometheusConnector(make_config("prometheus", url)).test()
    assert str(caught.value) == f"Prometheus at {url} could not be reached: connection refused"


def test_slow_server_times_out(slow_server):
    connector = PrometheusConnector(make_config("prometheus", slow_server, timeout=0.3))
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        connector.metrics(Signal("x", "metric", "up"), None, *_window(), 15)
    assert str(caught.value) == f"Prometheus at {slow_server} timed out after 0.3 s"
    assert time.monotonic() - started < 5


def test_prometheus_has_no_logs(prometheus):
    with pytest.raises(UpstreamError, match="has no logs"):
        PrometheusConnector(make_config("prometheus", prometheus)).logs(Signal("l", "log", "x"), None, *_window(), 10)


def test_compatible_server_without_buildinfo_passes_the_test(httpserver):
    """Some Prometheus-compatible servers have no buildinfo; a trivial query then proves the API works."""
    httpserver.expect_request("/api/v1/status/buildinfo").respond_with_data("404 page not found", status=404)
    httpserver.expect_request("/api/v1/query").respond_with_json(
        {"status": "success", "data": {"resultType": "scalar", "result": [1795687200, "1"]}})
    url = httpserver.url_for("/").rstrip("/")
    assert PrometheusConnector(make_config("prometheus", url)).test() == f"Prometheus at {url} answered; queries work"
