"""The CloudWatch connector (boto3) against a moto server, plus botocore's Stubber for pages moto never sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("boto3", reason="the aws extra is not installed")
pytest.importorskip("moto", reason="moto[cloudwatch,logs] is not installed")

import boto3  # noqa: E402
import moto.settings  # noqa: E402
from botocore.stub import ANY, Stubber  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from blametrail.errors import UpstreamError  # noqa: E402
from blametrail.integrations import cloudwatch as cw_module  # noqa: E402
from blametrail.integrations.cloudwatch import CloudWatchConnector  # noqa: E402
from blametrail.integrations.common import Signal  # noqa: E402
from tests.integrations.conftest import free_port, make_config  # noqa: E402

REGION = "eu-west-1"
KEYS = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START, END = NOW - timedelta(hours=1), NOW + timedelta(minutes=1)
METRIC = Signal("errors", "metric", json.dumps({"namespace": "BlameTrail/Test", "metric": "Errors",
                                                "dimensions": {"Service": "$service"}, "stat": "Sum", "period": 60}))
LOGS = Signal("errors_log", "log", json.dumps({"log_groups": ["/ecs/$service"], "filter_pattern": "ERROR"}))


@pytest.fixture(scope="module")
def moto_server():
    """A moto server on a free port holding one metric (30 minutes) and one log group (12 events)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    kw = {"region_name": REGION, "endpoint_url": url, "aws_access_key_id": KEYS["access_key_id"],
          "aws_secret_access_key": KEYS["secret_access_key"]}
    cw = boto3.client("cloudwatch", **kw)
    for i in range(30):
        cw.put_metric_data(Namespace="BlameTrail/Test", MetricData=[{
            "MetricName": "Errors", "Dimensions": [{"Name": "Service", "Value": "checkout"}],
            "Timestamp": NOW - timedelta(minutes=30 - i), "Value": float(i if i < 20 else 100 + i)}])
    logs = boto3.client("logs", **kw)
    logs.create_log_group(logGroupName="/ecs/checkout")
    logs.create_log_stream(logGroupName="/ecs/checkout", logStreamName="web/1")
    base = int((NOW - timedelta(minutes=10)).timestamp() * 1000)
    logs.put_log_events(logGroupName="/ecs/checkout", logStreamName="web/1", logEvents=[
        {"timestamp": base + i * 1000, "message": (f"ERROR pool exhausted #{i}" if i % 2 else f"INFO ok #{i}")}
        for i in range(24)])
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="no-permissions")
    key = iam.create_access_key(UserName="no-permissions")["AccessKey"]
    yield {"url": url, "powerless": {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}}
    server.stop()


def connector(moto_server, credentials=KEYS, kinds=("metric", "log"), **kwargs) -> CloudWatchConnector:
    return CloudWatchConnector(make_config("cloudwatch", REGION, name="aws-prod", credentials=credentials,
                                           options={"endpoint_url": moto_server["url"]}, kinds=kinds, **kwargs))


def test_get_metric_data_with_service_dimension(moto_server):
    series = connector(moto_server).metrics(METRIC, "checkout", START, END, 60)
    assert len(series) == 1
    s = series[0]
    assert s.name == "errors" and s.service == "checkout" and s.source == "aws-prod"
    assert len(s.points) == 30 and s.points[0][1] == 0.0 and s.points[-1][1] == 129.0
    assert [t for t, _ in s.points] == sorted(t for t, _ in s.points) and s.points[0][0].tzinfo is not None
    assert ("Service", "checkout") in s.labels


def test_other_service_has_no_points(moto_server):
    series = connector(moto_server).metrics(METRIC, "billing", START, END, 60)
    assert all(not s.points for s in series)


def test_filter_log_events_paginates_and_caps(moto_server, monkeypatch):
    monkeypatch.setattr(cw_module, "LOG_PAGE", 4)  # why: moto pages like AWS only when asked for small pages
    calls = []
    real = CloudWatchConnector._call

    def counting(self, fn, action):
        calls.append(action)
        return real(self, fn, action)

    monkeypatch.setattr(CloudWatchConnector, "_call", counting)
    lines = connector(moto_server).logs(LOGS, "checkout", START, END, 100)
    assert [line.text for line in lines] == [f"ERROR pool exhausted #{i}" for i in range(1, 24, 2)]
    assert dict(lines[0].labels) == {"log_group": "/ecs/checkout", "log_stream": "web/1"}
    assert calls.count("logs:FilterLogEvents") >= 3
    capped = connector(moto_server).logs(LOGS, "checkout", START, END, 5)
    assert len(capped) == 5


def test_missing_log_group_is_named(moto_server):
    with pytest.raises(UpstreamError, match=r"has no such resource \(ResourceNotFoundException\)"):
        connector(moto_server).logs(LOGS, "nope", START, END, 10)


def test_test_checks_metrics_and_logs(moto_server):
    assert connector(moto_server).test() == f"CloudWatch in {REGION} at {moto_server['url']} answered; can read metrics and logs"


def test_unknown_keys_are_rejected_and_missing_permissions_named(moto_server, monkeypatch):
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto now checks IAM like AWS
    with pytest.raises(UpstreamError) as caught:
        connector(moto_server, credentials={"access_key_id": "AKIAUNKNOWN", "secret_access_key": "x"}).test()
    assert "rejected the credentials (InvalidClientTokenId)" in str(caught.value)
    with pytest.raises(UpstreamError) as caught:
        connector(moto_server, credentials=moto_server["powerless"]).metrics(METRIC, "checkout", START, END, 60)
    assert "denied access (AccessDenied)" in str(caught.value)
    assert "allow cloudwatch:GetMetricData" in str(caught.value)
    with pytest.raises(UpstreamError, match="allow logs:FilterLogEvents"):
        connector(moto_server, credentials=moto_server["powerless"]).logs(LOGS, "checkout", START, END, 10)


def _stubbed(monkeypatch, c: CloudWatchConnector, sent: list | None = None):
    """Give the connector one stubbed client; `sent` collects the parameters of every call."""
    client = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    if sent is not None:
        client.meta.events.register("provide-client-params.cloudwatch.*", lambda params, **_: sent.append(params))
    monkeypatch.setattr(c, "_client", lambda service: client)
    return Stubber(client)


def test_get_metric_data_follows_next_token(monkeypatch):
    c = CloudWatchConnector(make_config("cloudwatch", REGION, credentials=KEYS))
    stubber = _stubbed(monkeypatch, c)
    t = [NOW - timedelta(minutes=3 - i) for i in range(4)]
    stubber.add_response("get_metric_data", {
        "MetricDataResults": [{"Id": "m0", "Label": "Errors", "Timestamps": t[:2], "Values": [1.0, 2.0],
                               "StatusCode": "PartialData"}], "NextToken": "page-2"})
    stubber.add_response("get_metric_data", {
        "MetricDataResults": [{"Id": "m0", "Label": "Errors", "Timestamps": t[2:], "Values": [3.0, 4.0],
                               "StatusCode": "Complete"}]},
        expected_params={"MetricDataQueries": ANY, "StartTime": START, "EndTime": END,
                         "ScanBy": "TimestampAscending", "MaxDatapoints": 1000, "NextToken": "page-2"})
    with stubber:
        series = c.metrics(METRIC, "checkout", START, END, 60)
    assert [v for _, v in series[0].points] == [1.0, 2.0, 3.0, 4.0]
    stubber.assert_no_pending_responses()


def test_throttling_and_bad_parameters_are_explained(monkeypatch):
    c = CloudWatchConnector(make_config("cloudwatch", REGION, credentials=KEYS))
    stubber = _stubbed(monkeypatch, c)
    stubber.add_client_error("get_metric_data", service_error_code="Throttling", service_message="Rate exceeded",
                             http_status_code=400)
    stubber.add_client_error("get_metric_data", service_error_code="InvalidParameterValue",
                             service_message="The value Bogus for parameter Stat is not valid.", http_status_code=400)
    with stubber:
        with pytest.raises(UpstreamError) as caught:
            c.metrics(METRIC, "checkout", START, END, 60)
        assert str(caught.value) == (f"CloudWatch in {REGION} rate-limited the request (Throttling): Rate exceeded; "
                                     "retry later")
        with pytest.raises(UpstreamError, match=r"rejected the query \(InvalidParameterValue\): The value Bogus"):
            c.metrics(METRIC, "checkout", START, END, 60)


def test_period_is_coarsened_to_stay_under_the_point_cap(monkeypatch):
    c = CloudWatchConnector(make_config("cloudwatch", REGION, credentials=KEYS, max_points=100))
    sent: list[dict] = []
    stubber = _stubbed(monkeypatch, c, sent)
    stubber.add_response("get_metric_data", {"MetricDataResults": []})
    with stubber:
        c.metrics(METRIC, "checkout", NOW - timedelta(days=1), NOW, 60)
    stat = sent[0]["MetricDataQueries"][0]["MetricStat"]
    assert stat["Period"] == 900  # 86,400 s / 100 points → 15 minutes
    assert stat["Stat"] == "Sum" and stat["Metric"]["Dimensions"] == [{"Name": "Service", "Value": "checkout"}]


def test_unreachable_and_timeout(slow_server):
    url = f"http://127.0.0.1:{free_port()}"
    c = CloudWatchConnector(make_config("cloudwatch", REGION, credentials=KEYS, options={"endpoint_url": url}))
    with pytest.raises(UpstreamError, match="could not be reached: connection refused"):
        c.test()
    c = CloudWatchConnector(make_config("cloudwatch", REGION, credentials=KEYS, options={"endpoint_url": slow_server},
                                        timeout=0.3))
    with pytest.raises(UpstreamError, match=r"timed out after 0\.3 s"):
        c.test()


def test_bad_spec_is_explained():
    c = CloudWatchConnector(make_config("cloudwatch", REGION, credentials=KEYS))
    with pytest.raises(UpstreamError, match="not JSON"):
        c.metrics(Signal("x", "metric", "CPUUtilization"), None, START, END, 60)
