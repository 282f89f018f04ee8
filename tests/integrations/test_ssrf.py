"""The SSRF guard on observability connections: blocked endpoints are refused when saved (422, nothing stored),
and at request time (a name resolving to a metadata address, a redirect towards one) nothing is sent there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.errors import UpstreamError
from blametrail.integrations.common import Signal
from blametrail.integrations.models import Connection
from blametrail.integrations.prometheus import PrometheusConnector
from tests.conftest import START
from tests.integrations.conftest import make_config
from tests.test_netguard import dns  # noqa: F401  (fixture)

METADATA = ("169.254.169.254 is a link-local/cloud metadata address; BlameTrail refuses it unless "
            "BLAMETRAIL_OUTBOUND_ALLOW lists it.")
SIGNAL = Signal(name="error_rate", kind="metric", query="sum(rate(errors[1m]))")


@pytest.fixture
def admin(factory):
    return factory.member(factory.org(), "admin")


def _count(rt) -> int:
    with db.transaction(rt.factory) as s:
        return s.scalar(select(func.count(Connection.id)))


def test_a_metadata_endpoint_is_422_and_nothing_is_stored(client, admin, rt):
    for body in ({"provider": "prometheus", "endpoint": "http://169.254.169.254:9090"},
                 {"provider": "loki", "endpoint": "http://[fd00:ec2::254]:3100"},
                 {"provider": "prometheus", "endpoint": "http://2852039166/"},
                 {"provider": "datadog", "endpoint": "http://metadata.google.internal"},
                 {"provider": "cloudwatch", "endpoint": "eu-west-1", "options": {"endpoint_url": "http://0xa9fea9fe:4566"}}):
        r = client.post("/api/v1/connections", json={"name": "c", **body}, headers=admin.headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        detail = r.json()["detail"]
        assert "BlameTrail refuses it unless BLAMETRAIL_OUTBOUND_ALLOW lists it." in detail
        assert ("169.254.169.254" in detail or "metadata" in detail), detail
    assert _count(rt) == 0


def test_changing_the_endpoint_to_a_metadata_address_is_422(client, admin):
    cid = client.post("/api/v1/connections", json={"name": "p", "provider": "prometheus",
                                                   "endpoint": "http://prometheus.internal:9090"},
                      headers=admin.headers).json()["id"]
    r = client.patch(f"/api/v1/connections/{cid}", json={"endpoint": "http://169.254.169.254/"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["detail"] == "body.endpoint: " + METADATA
    got = client.get(f"/api/v1/connections/{cid}", headers=admin.headers).json()
    assert got["endpoint"] == "http://prometheus.internal:9090"


def test_the_allow_list_lets_the_operator_save_it(client, admin, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "outbound_allow", "169.254.169.254")
    r = client.post("/api/v1/connections", json={"name": "p", "provider": "prometheus",
                                                  "endpoint": "http://169.254.169.254:9090"}, headers=admin.headers)
    assert r.status_code == 201, r.text


def test_a_name_resolving_to_the_metadata_address_fails_the_connection_test(client, admin, dns):  # noqa: F811
    dns.table["prom.test"] = [["169.254.169.254"]]
    r = client.post("/api/v1/connections", json={"name": "p", "provider": "prometheus",
                                                  "endpoint": "http://prom.test:9090"}, headers=admin.headers)
    assert r.status_code == 201, r.text  # save time never looks names up: the host may not resolve yet
    result = client.post(f"/api/v1/connections/{r.json()['id']}/test", headers=admin.headers).json()
    assert result == {"ok": False, "error": "prom.test resolves to 169.254.169.254, a link-local/cloud metadata "
                                            "address; BlameTrail refuses it unless BLAMETRAIL_OUTBOUND_ALLOW lists it."}


def test_a_prometheus_query_redirected_to_the_metadata_address_sends_nothing_there(httpserver):
    httpserver.expect_request("/api/v1/query_range").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    connector = PrometheusConnector(make_config("prometheus", httpserver.url_for("/").rstrip("/")))
    with pytest.raises(UpstreamError) as info:
        connector.metrics(SIGNAL, "checkout", START - timedelta(hours=1), START, 60)
    message = str(info.value)
    assert "redirected to http://169.254.169.254/latest/meta-data (HTTP 302)" in message
    assert message.endswith(METADATA)
    assert len(httpserver.log) == 1  # the redirect was not followed


def test_a_prometheus_endpoint_resolving_to_metadata_is_refused_by_the_guard(dns):  # noqa: F811
    dns.table["prom.test"] = [["127.0.0.1", "169.254.169.254"]]
    connector = PrometheusConnector(make_config("prometheus", "http://prom.test:9090"))
    with pytest.raises(UpstreamError, match="prom.test resolves to 169.254.169.254, a link-local"):
        connector.metrics(SIGNAL, "checkout", START - timedelta(hours=1), START, 60)


def test_datadog_and_cloudwatch_hosts_are_checked_before_calling(dns):  # noqa: F811
    pytest.importorskip("datadog_api_client", reason="the datadog extra is not installed")
    pytest.importorskip("boto3", reason="the aws extra is not installed")
    from blametrail.integrations.cloudwatch import CloudWatchConnector
    from blametrail.integrations.datadog import DatadogConnector

    dns.table["dd.test"] = [["169.254.169.254"]]
    dd = DatadogConnector(make_config("datadog", "http://dd.test:8126", credentials={"api_key": "a", "app_key": "b"}))
    with pytest.raises(UpstreamError, match="dd.test resolves to 169.254.169.254"):
        dd.test()
    cw = CloudWatchConnector(make_config("cloudwatch", "eu-west-1", options={"endpoint_url": "http://[::ffff:a9fe:a9fe]:4566"},
                                         credentials={"access_key_id": "AKIA", "secret_access_key": "s"}))
    with pytest.raises(UpstreamError, match=r"\(169.254.169.254 inside IPv6\) is a link-local"):
        cw.test()
