"""Connection service: encrypted credentials, validation per provider, templating, and fetching evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.errors import Conflict, Forbidden, UpstreamError, ValidationFailed
from blametrail.integrations import service as connections
from blametrail.integrations.base import REGISTRY, Signal, connector_for, render
from blametrail.integrations.schemas import ConnectionCreate, ConnectionUpdate
from blametrail.web.presenters import connection_read
from tests.integrations.conftest import free_port

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
START, END = T0, T0 + timedelta(hours=2)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch(*, session, org_id, services, start, end, box, **options):
    """Plan and run the fetches as the draft path does (reads, then the network)."""
    tasks = connections.plan_fetch(session=session, org_id=org_id, services=services, box=box)
    return connections.collect(tasks, start=start, end=end, **options)


def create(rt, actor, **fields):
    data = ConnectionCreate(**{"name": "prom", "provider": "prometheus", "endpoint": "http://prometheus:9090",
                               **fields})
    with db.transaction(rt.factory) as s:
        c = connections.create(session=s, actor=actor, data=data, box=rt.secret_box, now=rt.clock.now(),
                               allow_fake=True)
        return c.id


@pytest.fixture
def admin(factory):
    return factory.member(factory.org(), "admin").actor


# --- templating ------------------------------------------------------------------------------------------------


def test_render_escapes_quotes_and_backslashes():
    assert render('rate(http_requests_total{service="$service"}[5m])', "checkout") == \
        'rate(http_requests_total{service="checkout"}[5m])'
    assert render('{app="${service}"}', 'a"b\\c') == '{app="a\\"b\\\\c"}'
    assert render("service:$service status:error", "api") == "service:api status:error"
    assert render('x{s="$services"}', "api") == 'x{s="$services"}'  # only the whole word is a placeholder
    assert render("up{job=\"$service\"}", None) == "up{job=\"$service\"}"


def test_signal_coverage_and_templating():
    s = Signal("e", "metric", 'up{service="$service"}', services=("checkout", "cart"))
    assert s.templated and s.covers("cart") and not s.covers("billing")
    assert Signal("e", "metric", "up").covers("anything") and not Signal("e", "metric", "up").templated


def test_registry_is_a_static_dict_of_every_provider():
    assert set(REGISTRY) == {"prometheus", "loki", "datadog", "cloudwatch", "fake"}


# --- credentials -------------------------------------------------------------------------------------------------


def test_credentials_are_encrypted_at_rest(rt, admin):
    cid = create(rt, admin, credentials={"token": "prom-super-secret-token"})
    with db.transaction(rt.factory) as s:
        raw = s.execute(text("SELECT credentials_encrypted FROM connection WHERE id = :id"), {"id": cid}).scalar_one()
        row = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
        shown = connection_read(row, rt.secret_box)
    assert "prom-super-secret-token" not in raw and "token" not in raw
    assert json.loads(rt.secret_box.decrypt(raw)) == {"token": "prom-super-secret-token"}
    assert shown["has_credentials"] is True and shown["credential_keys"] == ["token"]
    assert "prom-super-secret-token" not in json.dumps(shown, default=str)


def test_update_keeps_replaces_or_clears_credentials(rt, admin):
    cid = create(rt, admin, credentials={"username": "grafana", "password": "pw-1"})
    box = rt.secret_box

    def patch(**fields):
        with db.transaction(rt.factory) as s:
            c = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
            connections.update(session=s, actor=admin, connection=c, data=ConnectionUpdate(**fields), box=box,
                               now=rt.clock.now())
            return connection_read(c, box)

    assert patch(name="prom-eu")["credential_keys"] == ["password", "username"]
    assert patch(credentials={"token": "t-2"})["credential_keys"] == ["token"]
    cleared = patch(credentials={})
    assert cleared["has_credentials"] is False and cleared["credential_keys"] == []


def test_a_changed_secret_key_is_reported_not_crashed(rt, admin):
    cid = create(rt, admin, credentials={"token": "t"})
    with db.transaction(rt.factory) as s:
        c = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
        assert connections.credential_keys(c, SecretBox("another-key")) == []
        _, _, errors = fetch(session=s, org_id=admin.org_id, services=[], start=START,
                                                      end=END, box=SecretBox("another-key"))
    assert errors == []  # no signals, nothing to fetch
    with db.transaction(rt.factory) as s:
        c = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
        connections.update(session=s, actor=admin, connection=c, box=rt.secret_box, now=rt.clock.now(),
                           data=ConnectionUpdate(signals=[{"name": "up", "query": "up"}]))
    with db.transaction(rt.factory) as s:
        _, _, errors = fetch(session=s, org_id=admin.org_id, services=[], start=START,
                                                      end=END, box=SecretBox("another-key"))
    assert len(errors) == 1 and "cannot be decrypted" in errors[0] and "BLAMETRAIL_SECRET_KEY" in errors[0]


# --- validation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"endpoint": "prometheus:9090"}, "http:// or https://"),
    ({"signals": [{"name": "l", "kind": "log", "query": "x"}]}, "can only be: metric"),
    ({"signals": [{"name": "a", "query": "up"}, {"name": "a", "query": "up"}]}, "used twice"),
    ({"credentials": {"token": "t", "username": "u", "password": "p"}}, "either a token"),
    ({"credentials": {"api_key": "x"}}, "unknown credential field"),
    ({"options": {"retries": 3}}, "unknown option"),
    ({"options": {"timeout_seconds": 0}}, "between"),
    ({"provider": "datadog", "endpoint": "datadoghq.eu", "credentials": {"api_key": "a"}}, "both api_key and app_key"),
    ({"provider": "datadog", "endpoint": "not a site"}, "Datadog site"),
    ({"provider": "cloudwatch", "endpoint": "Ireland"}, "AWS region"),
    ({"provider": "cloudwatch", "endpoint": "eu-west-1", "signals": [{"name": "m", "query": {"metric": "CPU"}}]},
     '"namespace" and "metric"'),
    ({"provider": "cloudwatch", "endpoint": "eu-west-1",
      "signals": [{"name": "m", "query": {"namespace": "AWS/EC2", "metric": "CPU", "period": 45}}]}, "period"),
    ({"provider": "cloudwatch", "endpoint": "eu-west-1", "signals": [{"name": "l", "kind": "log", "query": "{}"}]},
     "log_groups"),
    ({"provider": "cloudwatch", "endpoint": "eu-west-1", "credentials": {"access_key_id": "AKIA"}}, "together"),
    ({"provider": "loki", "endpoint": "http://loki:3100", "signals": [{"name": "l", "kind": "log", "query": "app"}]},
     "stream selector"),
])
def test_invalid_connections_are_refused_with_the_reason(rt, admin, fields, fragment):
    with pytest.raises(ValidationFailed) as caught:
        create(rt, admin, **fields)
    assert fragment in caught.value.detail


def test_valid_cloudwatch_connection_stores_specs_as_objects(rt, admin):
    cid = create(rt, admin, name="aws", provider="cloudwatch", endpoint="eu-west-1", signals=[
        {"name": "errors", "query": '{"namespace": "AWS/ApplicationELB", "metric": "HTTPCode_Target_5XX_Count", '
                                    '"dimensions": {"TargetGroup": "$service"}, "stat": "Sum", "period": 60}'},
        {"name": "app_logs", "kind": "log", "query": {"log_groups": "/ecs/$service", "filter_pattern": "ERROR"}},
    ], options={"endpoint_url": "http://localhost:4566"})
    with db.transaction(rt.factory) as s:
        c = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
        assert c.signals[0]["query"]["stat"] == "Sum"
        assert c.signals[1]["query"] == {"log_groups": ["/ecs/$service"], "filter_pattern": "ERROR"}
        assert c.credentials_encrypted is None


def test_names_are_unique_per_org_and_members_cannot_write(rt, factory):
    slug = factory.org()
    admin = factory.member(slug, "admin").actor
    create(rt, admin, name="prom")
    with pytest.raises(Conflict):
        create(rt, admin, name="prom")
    create(rt, factory.member(factory.org(), "owner").actor, name="prom")  # another org may use the name
    with pytest.raises(Forbidden):
        create(rt, factory.member(slug, "member").actor, name="other")


def test_fake_provider_needs_permission(rt, admin):
    with db.transaction(rt.factory) as s, pytest.raises(ValidationFailed, match="fake provider"):
        connections.create(session=s, actor=admin, box=rt.secret_box, now=rt.clock.now(),
                           data=ConnectionCreate(name="f", provider="fake"))


# --- the test ----------------------------------------------------------------------------------------------------


def test_test_connection_stores_the_outcome(rt, admin):
    good = create(rt, admin, name="good", provider="fake")
    bad = create(rt, admin, name="bad", provider="fake", options={"fail": "Prometheus at http://x rejected the "
                                                                          "credentials (401)"})
    with db.transaction(rt.factory) as s:
        for cid in (good, bad):
            c = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
            connections.test_connection(session=s, actor=admin, connection=c, box=rt.secret_box, now=rt.clock.now())
    with db.transaction(rt.factory) as s:
        g = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=good)
        b = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=bad)
        assert (g.last_test_ok, g.last_test_error, g.last_test_at) == (True, None, rt.clock.now())
        assert b.last_test_ok is False and b.last_test_error.endswith("rejected the credentials (401)")


# --- fetching evidence -------------------------------------------------------------------------------------------


def _fake_data() -> dict:
    return {
        "series": [
            {"name": "error_rate", "service": "checkout", "unit": "%",
             "points": [[iso(T0 + timedelta(minutes=m)), 0.1 if m < 60 else 12.5] for m in range(0, 120, 10)]},
            {"name": "error_rate", "service": "billing", "points": [[iso(T0), 0.0]]},
            {"name": "latency", "service": None, "points": [[iso(T0 - timedelta(days=1)), 3.0]]},  # outside the window
        ],
        "logs": [
            {"at": iso(T0 + timedelta(minutes=65)), "text": "connection pool exhausted", "service": "checkout"},
            {"at": iso(T0 + timedelta(minutes=61)), "text": "pool exhausted (max=5)", "service": "checkout"},
            {"at": iso(T0 + timedelta(minutes=70)), "text": "billing ok", "service": "billing"},
        ],
    }


def test_fetch_collects_and_reports_failures_without_raising(rt, admin):
    create(rt, admin, name="a-metrics", provider="fake", options=_fake_data(), signals=[
        {"name": "error_rate", "query": 'sum(rate(errors{service="$service"}[1m]))', "services": ["*"]},
        {"name": "latency", "query": "histogram_quantile(0.99, x)"},
        {"name": "checkout_logs", "kind": "log", "query": '{app="$service"}', "services": ["checkout"]},
        {"name": "billing_only", "query": "up", "services": ["billing"]},
    ])
    create(rt, admin, name="b-broken", provider="fake",
           options={"fail": "Prometheus at http://prom:9090 could not be reached: connection refused"},
           signals=[{"name": "error_rate", "query": 'x{s="$service"}'}, {"name": "saturation", "query": "y"}])
    create(rt, admin, name="c-disabled", provider="fake", enabled=False, options={"fail": "must not run"},
           signals=[{"name": "e", "query": "up"}])
    unreachable = f"http://127.0.0.1:{free_port()}"
    create(rt, admin, name="d-prometheus", endpoint=unreachable, signals=[{"name": "up", "query": "up"}])
    with db.transaction(rt.factory) as s:
        series, lines, errors = fetch(
            session=s, org_id=admin.org_id, services=["checkout", "cart"], start=START, end=END, box=rt.secret_box,
            step_seconds=60, line_limit=10)
    by_name = {(x.name, x.service): x for x in series}
    assert set(by_name) == {("error_rate", "checkout"), ("latency", None)}
    rate = by_name[("error_rate", "checkout")]
    assert len(rate.points) == 12 and rate.points[-1][1] == 12.5 and rate.unit == "%" and rate.source == "a-metrics"
    assert by_name[("latency", None)].points == ()
    assert [line.text for line in lines] == ["pool exhausted (max=5)", "connection pool exhausted"]
    assert errors == [
        "b-broken (error_rate for cart, error_rate for checkout, saturation): "
        "Prometheus at http://prom:9090 could not be reached: connection refused",
        f"d-prometheus (up): Prometheus at {unreachable} could not be reached: connection refused",
    ]


def test_fetch_skips_templated_signals_when_the_incident_has_no_service(rt, admin):
    create(rt, admin, name="f", provider="fake", options=_fake_data(), signals=[
        {"name": "error_rate", "query": 'x{s="$service"}'}, {"name": "latency", "query": "y"}])
    with db.transaction(rt.factory) as s:
        tasks = connections.plan_fetch(session=s, org_id=admin.org_id, services=[], box=rt.secret_box)
    assert [(t.signal.name, t.service) for t in tasks] == [("latency", None)]


def test_fetch_sees_only_its_own_organization(rt, factory, admin):
    other = factory.member(factory.org(), "owner").actor
    create(rt, other, name="theirs", provider="fake", options=_fake_data(),
           signals=[{"name": "error_rate", "query": "x"}])
    with db.transaction(rt.factory) as s:
        assert fetch(session=s, org_id=admin.org_id, services=["checkout"], start=START,
                                              end=END, box=rt.secret_box) == ([], [], [])


def test_a_connector_bug_becomes_an_error_string(rt, admin, monkeypatch):
    create(rt, admin, name="f", provider="fake", signals=[{"name": "e", "query": "x"}])
    monkeypatch.setattr(REGISTRY["fake"].connector, "metrics", lambda *a, **k: 1 / 0)
    with db.transaction(rt.factory) as s:
        _, _, errors = fetch(session=s, org_id=admin.org_id, services=[], start=START,
                                                      end=END, box=rt.secret_box)
    assert errors == ["f (e): failed unexpectedly (ZeroDivisionError: division by zero)"]


def test_connector_for_applies_option_limits(rt, admin):
    cid = create(rt, admin, options={"timeout_seconds": 2.5, "max_lines": 10}, credentials={"token": "t"},
                 signals=[{"name": "up", "query": "up"}])
    with db.transaction(rt.factory) as s:
        c = connections.get_or_404(session=s, org_id=admin.org_id, connection_id=cid)
        conn = connector_for(c, rt.secret_box)
    assert conn.config.limits.timeout_seconds == 2.5 and conn.config.limits.max_lines == 10
    assert conn.config.credentials == {"token": "t"} and conn.config.kinds == frozenset({"metric"})


def test_a_missing_extra_is_explained(monkeypatch):
    import sys

    from blametrail.integrations.cloudwatch import CloudWatchConnector
    from blametrail.integrations.datadog import DatadogConnector
    from tests.integrations.conftest import make_config

    monkeypatch.setitem(sys.modules, "datadog_api_client", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(UpstreamError, match=r"pip install 'blametrail\[datadog\]'"):
        DatadogConnector(make_config("datadog", "datadoghq.eu")).test()
    with pytest.raises(UpstreamError, match=r"pip install 'blametrail\[aws\]'"):
        CloudWatchConnector(make_config("cloudwatch", "eu-west-1")).test()
