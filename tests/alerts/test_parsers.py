"""Real delivery bodies, as Alertmanager 0.25 and Grafana 10/11 unified alerting send them (shapes from their docs)."""

from __future__ import annotations

import copy
import json

ALERTMANAGER_FIRING = {
    "receiver": "blametrail",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "job": "checkout", "instance": "10.0.3.7:8080",
                       "severity": "critical", "env": "production"},
            "annotations": {"summary": "5xx ratio above 5% on checkout",
                            "description": "checkout 5xx ratio is 12.3% (threshold 5%) for 2 minutes."},
            "startsAt": "2026-11-26T09:58:12.345678901Z",
            "endsAt": "2026-11-26T10:02:12.345678901Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=job%3Acheckout%3Aerror_ratio+%3E+0.05&g0.tab=1",
            "fingerprint": "c5a3b2e1f0d4a6b7",
        },
        {
            "status": "firing",
            "labels": {"alertname": "PaymentLatencyHigh", "service": "payments", "severity": "warning",
                       "job": "payments-api"},
            "annotations": {"description": "p99 latency 2.4s"},
            "startsAt": "2026-11-26T09:59:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=payment_latency",
            "fingerprint": "0b4d1e0e2a3b9c11",
        },
    ],
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"env": "production"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": "{}:{alertname=\"HighErrorRate\"}",
    "truncatedAlerts": 0,
}

GRAFANA_FIRING = {
    "receiver": "BlameTrail",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1", "app": "cart"},
            "annotations": {"description": "The system has high memory usage",
                            "runbook_url": "https://myrunbook.com/runbook/1234",
                            "summary": "This alert was triggered for zone us-1"},
            "startsAt": "2026-11-26T11:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://grafana.example/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://grafana.example/alerting/silence/new?alertmanager=grafana&matcher=alertname%3DT1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
            "valueString": "[ var='B' labels={__name__=go_memstats_alloc_bytes} value=44.23943737541908 ]",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {"description": "The system has high CPU usage"},
            "startsAt": "2026-11-26T09:40:03.157076Z",
            "endsAt": "2026-11-26T09:55:03.157076Z",
            "generatorURL": "https://grafana.example/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://grafana.example/alerting/silence/new",
            "dashboardURL": "",
            "panelURL": "",
            "values": None,
            "valueString": "[ var='B0' metric='cpu' labels={} value=91.2 ]",
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://grafana.example/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:1, RESOLVED:1]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nValue: B=44.2\nLabels:\n - alertname = High memory usage\n",
}

GENERIC_FIRING = {
    "alerts": [
        {"name": "QueueBacklog", "status": "firing", "fingerprint": "orders-backlog", "service": "orders",
         "severity": "error", "summary": "orders queue backlog above 10k", "labels": {"queue": "orders"},
         "starts_at": "2026-11-26T09:55:00Z", "url": "https://monitoring.example/queues/orders"},
    ]
}


def alertmanager(*alerts: dict, **top) -> dict:
    """Return an Alertmanager body with these alerts (copies of the real sample otherwise)."""
    body = copy.deepcopy(ALERTMANAGER_FIRING)
    if alerts:
        body["alerts"] = list(alerts)
    body.update(top)
    return body


def am_alert(name: str = "HighErrorRate", status: str = "firing", fingerprint: str = "fp0001",
             starts: str = "2026-11-26T09:58:00Z", ends: str = "0001-01-01T00:00:00Z", service: str | None = "checkout",
             severity: str = "critical", summary: str = "5xx ratio above 5%", **labels) -> dict:
    """Return one alert as Alertmanager sends it."""
    lab = {"alertname": name, "severity": severity, **labels}
    if service:
        lab["service"] = service
    return {"status": status, "labels": lab, "annotations": {"summary": summary} if summary else {},
            "startsAt": starts, "endsAt": ends, "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint}


def raw(body: dict) -> bytes:
    return json.dumps(body).encode()


# --- tests -------------------------------------------------------------------------------------------------------

from datetime import UTC, datetime  # noqa: E402

import pytest  # noqa: E402

from blametrail.alerts import parsers  # noqa: E402
from blametrail.alerts.parsers import MalformedPayload, NormalizedAlert, parse  # noqa: E402
from blametrail.errors import ValidationFailed  # noqa: E402

D = {"default_service": None, "default_severity": "SEV-3"}


def locs(exc: ValidationFailed) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.extra["errors"]]


def test_alertmanager_v4_sample_normalizes_every_field():
    first, second = parse("alertmanager", raw(ALERTMANAGER_FIRING), **D)
    assert first == NormalizedAlert(
        source="alertmanager", name="HighErrorRate", status="firing", fingerprint="c5a3b2e1f0d4a6b7",
        starts_at=datetime(2026, 11, 26, 9, 58, 12, 345678, tzinfo=UTC), ends_at=None, service="checkout",
        severity="SEV-1", summary="5xx ratio above 5% on checkout",
        labels=ALERTMANAGER_FIRING["alerts"][0]["labels"], annotations=ALERTMANAGER_FIRING["alerts"][0]["annotations"],
        url=ALERTMANAGER_FIRING["alerts"][0]["generatorURL"],
    )
    # the service label wins over job; description stands in for a missing summary; warning → SEV-3
    assert (second.service, second.severity, second.summary) == ("payments", "SEV-3", "p99 latency 2.4s")


def test_firing_alerts_ignore_the_senders_provisional_ends_at():
    (a, _) = parse("alertmanager", raw(ALERTMANAGER_FIRING), **D)
    assert a.ends_at is None  # Alertmanager sets endsAt in the future on firing alerts; it is not an end


def test_resolved_alertmanager_alert_keeps_its_end():
    body = alertmanager(am_alert(status="resolved", ends="2026-11-26T10:20:00Z"), status="resolved")
    (a,) = parse("alertmanager", raw(body), **D)
    assert a.status == "resolved" and a.ends_at == datetime(2026, 11, 26, 10, 20, tzinfo=UTC)


def test_resolved_alert_ending_before_it_started_is_clamped_to_its_start():
    body = alertmanager(am_alert(status="resolved", starts="2026-11-26T10:00:00Z", ends="2026-11-26T09:00:00Z"))
    (a,) = parse("alertmanager", raw(body), **D)
    assert a.ends_at == a.starts_at


@pytest.mark.parametrize("version", ["3", 4, None, "5"])
def test_alertmanager_wrong_version_is_refused(version):
    body = alertmanager(version=version)
    with pytest.raises(ValidationFailed) as err:
        parse("alertmanager", raw(body), **D)
    assert locs(err.value) == ["version"] and "version 4" in err.value.detail


def test_alertmanager_missing_version_is_refused():
    body = alertmanager()
    del body["version"]
    with pytest.raises(ValidationFailed, match="version"):
        parse("alertmanager", raw(body), **D)


def test_alertmanager_tolerates_fields_added_by_later_releases():
    body = alertmanager(someFutureField={"x": 1})
    body["alerts"][0]["anotherNewField"] = True
    assert len(parse("alertmanager", raw(body), **D)) == 2


def test_grafana_sample_normalizes_and_converts_offsets_to_utc():
    firing, resolved = parse("grafana", raw(GRAFANA_FIRING), **D)
    assert firing.source == "grafana" and firing.name == "High memory usage"
    assert firing.starts_at == datetime(2026, 11, 26, 9, 51, 3, 157076, tzinfo=UTC)
    assert firing.service == "cart"  # from the app label
    assert firing.summary == "This alert was triggered for zone us-1"
    assert firing.severity == "SEV-3" and firing.fingerprint == "c6eadffa33fcdf37"
    assert resolved.status == "resolved" and resolved.ends_at == datetime(2026, 11, 26, 9, 55, 3, 157076, tzinfo=UTC)
    assert resolved.service is None


def test_grafana_without_fingerprint_derives_a_stable_one_from_sorted_labels():
    body = json.loads(raw(GRAFANA_FIRING))
    for a in body["alerts"]:
        del a["fingerprint"]
    one = parse("grafana", raw(body), **D)
    body["alerts"][0]["labels"] = dict(reversed(list(body["alerts"][0]["labels"].items())))
    two = parse("grafana", raw(body), **D)
    assert one[0].fingerprint == two[0].fingerprint and len(one[0].fingerprint) == 32
    assert one[0].fingerprint != one[1].fingerprint


def test_grafana_legacy_format_gets_a_clear_message():
    legacy = {"title": "[Alerting] Panel Title alert", "ruleId": 1, "ruleName": "Panel Title alert", "state": "alerting",
              "evalMatches": [{"value": 100, "metric": "High value", "tags": None}], "orgId": 1}
    with pytest.raises(ValidationFailed, match="legacy alerting"):
        parse("grafana", raw(legacy), **D)


def test_grafana_wrong_version_is_refused():
    with pytest.raises(ValidationFailed, match="version"):
        parse("grafana", raw({**GRAFANA_FIRING, "version": "2"}), **D)


def test_generic_sample_and_defaults():
    (a,) = parse("generic_alert", raw(GENERIC_FIRING), **D)
    assert (a.source, a.name, a.fingerprint, a.service, a.severity) == ("generic", "QueueBacklog", "orders-backlog",
                                                                        "orders", "SEV-2")
    assert a.url == "https://monitoring.example/queues/orders" and a.labels == {"queue": "orders"}
    (b,) = parse("generic_alert", raw({"alerts": [{"name": "Disk", "status": "firing"}]}),
                 default_service="storage", default_severity="SEV-2")
    assert (b.service, b.severity, b.starts_at, b.summary) == ("storage", "SEV-2", None, "")
    assert b.fingerprint == parsers.derive_fingerprint({"service": "storage"}, "Disk")


def test_generic_unknown_fields_are_refused_at_every_level():
    body = {"alerts": [{"name": "X", "status": "firing", "sevrity": "critical"}], "extra": 1}
    with pytest.raises(ValidationFailed) as err:
        parse("generic_alert", raw(body), **D)
    assert locs(err.value) == ["extra", "alerts.0.sevrity"]
    assert "unknown field" in err.value.detail and "sevrity" in err.value.detail


def test_generic_lists_every_bad_field():
    body = {"alerts": [{"status": "burning", "starts_at": "yesterday", "labels": {"a": 1}, "severity": "meh"},
                       "not an object"]}
    with pytest.raises(ValidationFailed) as err:
        parse("generic_alert", raw(body), **D)
    assert set(locs(err.value)) == {"alerts.0.name", "alerts.0.status", "alerts.0.starts_at", "alerts.0.labels.a",
                                    "alerts.0.severity", "alerts.1"}


def test_generic_end_before_start_is_refused():
    body = {"alerts": [{"name": "X", "status": "resolved", "starts_at": "2026-11-26T10:00:00Z",
                        "ends_at": "2026-11-26T09:00:00Z"}]}
    with pytest.raises(ValidationFailed, match="before starts_at"):
        parse("generic_alert", raw(body), **D)


@pytest.mark.parametrize("word,sev", [("critical", "SEV-1"), ("CRITICAL", "SEV-1"), ("error", "SEV-2"),
                                      ("high", "SEV-2"), ("major", "SEV-2"), ("warning", "SEV-3"), ("medium", "SEV-3"),
                                      ("info", "SEV-4"), ("low", "SEV-4"), ("minor", "SEV-4"), ("sev1", "SEV-1"),
                                      ("SEV-2", "SEV-2"), ("sev4", "SEV-4"), ("P3", "SEV-3"), ("bogus", None),
                                      (5, None)])
def test_severity_words(word, sev):
    assert parsers.map_severity(word) == sev


def test_unknown_severity_label_falls_back_to_the_webhook_default():
    body = alertmanager(am_alert(severity="page-someone"))
    (a,) = parse("alertmanager", raw(body), default_service=None, default_severity="SEV-2")
    assert a.severity == "SEV-2"


@pytest.mark.parametrize("labels,expected", [
    ({"service": "a", "job": "b", "app": "c"}, "a"), ({"job": "b", "app": "c"}, "b"), ({"app": "c"}, "c"),
    ({"instance": "x"}, "fallback"), ({"service": "  "}, "fallback"),
])
def test_service_label_order(labels, expected):
    body = alertmanager({"status": "firing", "labels": {"alertname": "A", **labels}, "annotations": {},
                         "startsAt": "2026-11-26T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f"})
    (a,) = parse("alertmanager", raw(body), default_service="fallback", default_severity="SEV-3")
    assert a.service == expected


@pytest.mark.parametrize("body,where", [
    (b"{\"alerts\": [", "line 1 column 13"),
    (b"{\n  \"version\": \"4\",\n  oops\n}", "line 3 column 3"),
    (b"", "line 1 column 1"),
])
def test_malformed_json_reports_the_position(body, where):
    with pytest.raises(MalformedPayload) as err:
        parse("alertmanager", body, **D)
    assert where in err.value.detail and err.value.status == 400


def test_non_utf8_body_is_malformed():
    with pytest.raises(MalformedPayload, match="not UTF-8"):
        parse("generic_alert", b"\xff\xfe{}", **D)


@pytest.mark.parametrize("kind", ["alertmanager", "grafana", "generic_alert"])
def test_top_level_must_be_an_object(kind):
    with pytest.raises(ValidationFailed, match="JSON object"):
        parse(kind, b"[1, 2]", **D)


def test_alert_count_is_capped():
    alerts = [{"name": f"A{i}", "status": "firing"} for i in range(parsers.MAX_ALERTS + 1)]
    with pytest.raises(ValidationFailed, match="at most 1000 alerts"):
        parse("generic_alert", raw({"alerts": alerts}), **D)
    assert len(parse("generic_alert", raw({"alerts": alerts[:-1]}), **D)) == parsers.MAX_ALERTS


def test_field_limits_refuse_identifiers_and_truncate_text():
    long_name = "N" * (parsers.MAX_NAME + 1)
    with pytest.raises(ValidationFailed, match="alerts.0.name: longer than 300"):
        parse("generic_alert", raw({"alerts": [{"name": long_name, "status": "firing"}]}), **D)
    with pytest.raises(ValidationFailed, match="fingerprint"):
        parse("alertmanager", raw(alertmanager(am_alert(fingerprint="f" * 129))), **D)
    with pytest.raises(ValidationFailed, match="service name longer"):
        parse("alertmanager", raw(alertmanager(am_alert(service="s" * 121))), **D)
    with pytest.raises(ValidationFailed, match="at most 100 entries"):
        parse("alertmanager", raw(alertmanager(am_alert(**{f"l{i}": "v" for i in range(100)}))), **D)
    (a,) = parse("generic_alert", raw({"alerts": [{"name": "X", "status": "firing", "summary": "s" * 10_000,
                                                   "labels": {"big": "v" * 5000}}]}), **D)
    assert len(a.summary) == parsers.MAX_SUMMARY and len(a.labels["big"]) == parsers.MAX_LABEL_VALUE
    with pytest.raises(ValidationFailed, match="url: longer than 2000"):
        parse("generic_alert", raw({"alerts": [{"name": "X", "status": "firing", "url": "u" * 2001}]}), **D)
    (b,) = parse("alertmanager", raw(alertmanager({**am_alert(), "generatorURL": "http://p/" + "u" * 2001})), **D)
    assert b.url is None  # a sender's over-long link is dropped, the alert kept


def test_timestamps():
    assert parsers.parse_time("0001-01-01T00:00:00Z") is None
    assert parsers.parse_time("2026-11-26T10:00:00.123456789Z") == datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    assert parsers.parse_time("2026-11-26T12:00:00+02:00") == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    for bad in ("2026-11-26", "2026-11-26T10:00:00", "10:00", "2026-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parsers.parse_time(bad)


def test_alertmanager_alert_errors_carry_their_index():
    body = alertmanager(am_alert(), {"status": "firing", "labels": {"alertname": "B"}, "endsAt": "x"})
    with pytest.raises(ValidationFailed) as err:
        parse("alertmanager", raw(body), **D)
    assert set(locs(err.value)) == {"alerts.1.startsAt", "alerts.1.endsAt"}


def test_empty_alert_list_is_valid():
    assert parse("alertmanager", raw(alertmanager(alerts=[])), **D) == []
