"""Webhook management API: create (secret once, encrypted at rest), list, rotate, disable, deliveries, alerts, roles."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from blametrail import db
from tests.alerts.test_parsers import ALERTMANAGER_FIRING, GENERIC_FIRING, raw

READ_FIELDS = {"id", "kind", "name", "url", "secret_prefix", "default_service", "default_severity", "environment",
               "open_incidents", "auto_resolve", "active", "created_at", "disabled_at", "last_delivery_at"}


@pytest.fixture
def team(factory):
    return factory.team()


def create(client, member, **body):
    payload = {"kind": "alertmanager", "name": "prod alertmanager", **body}
    return client.post("/api/v1/webhooks", headers=member.headers, json=payload)


def deliver(client, url, secret, body=ALERTMANAGER_FIRING):
    path = url.split("://", 1)[1].split("/", 1)[1]
    return client.post("/" + path, content=raw(body), headers={"Authorization": f"Bearer {secret}"})


def test_create_returns_url_and_secret_once(client, rt, team):
    r = create(client, team["admin"], default_service="checkout", default_severity="SEV-2", auto_resolve=True)
    assert r.status_code == 201, r.text
    hook = r.json()
    assert set(hook) == READ_FIELDS | {"secret"}
    # the address this request reached (BLAMETRAIL_PUBLIC_URL is not set here), never a hard-coded port
    assert hook["url"] == f"http://testserver/webhooks/alertmanager/{rt_uid(hook)}"
    assert hook["secret"].startswith("whsec_") and hook["secret"][:10] == hook["secret_prefix"]
    assert (hook["default_service"], hook["default_severity"], hook["auto_resolve"], hook["open_incidents"]) == (
        "checkout", "SEV-2", True, True)
    listed = client.get("/api/v1/webhooks", headers=team["viewer"].headers).json()
    assert [set(h) for h in listed] == [READ_FIELDS] and listed[0]["id"] == hook["id"]
    one = client.get(f"/api/v1/webhooks/{hook['id']}", headers=team["member"].headers).json()
    assert "secret" not in one and one["secret_prefix"] == hook["secret_prefix"]
    assert hook["secret"] not in client.get("/api/v1/webhooks", headers=team["owner"].headers).text


def rt_uid(hook: dict) -> str:
    return hook["url"].rsplit("/", 1)[1]


def test_url_uses_the_public_url_and_kind_path(client, rt, team):
    rt.settings.public_url = "https://blametrail.example.com/"
    kinds = {"alertmanager": "alertmanager", "grafana": "grafana", "generic_alert": "alerts", "github": "github",
             "generic_deploy": "deploys"}
    for kind, path in kinds.items():
        url = create(client, team["owner"], kind=kind, name=kind).json()["url"]
        assert url.startswith(f"https://blametrail.example.com/webhooks/{path}/")


def test_secret_is_stored_encrypted_not_in_plain_text(client, rt, team):
    hook = create(client, team["owner"]).json()
    with db.transaction(rt.factory) as s:
        rows = s.execute(text("SELECT * FROM webhook")).all()
    dumped = repr(rows)
    assert hook["secret"] not in dumped and hook["secret"][10:] not in dumped
    assert rt.secret_box.decrypt(rows[0]._mapping["secret_encrypted"]) == hook["secret"]


def test_the_created_secret_authenticates_deliveries(client, team):
    hook = create(client, team["owner"]).json()
    assert deliver(client, hook["url"], hook["secret"]).status_code == 200
    assert deliver(client, hook["url"], "whsec_guess").status_code == 401


def test_rotate_secret_returns_a_new_one_and_retires_the_old(client, team):
    hook = create(client, team["owner"]).json()
    r = client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=team["admin"].headers)
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new != hook["secret"] and r.json()["secret_prefix"] == new[:10] and r.json()["url"] == hook["url"]
    assert deliver(client, hook["url"], hook["secret"]).status_code == 401
    assert deliver(client, hook["url"], new).status_code == 200


def test_disable_stops_the_receiver(client, team):
    hook = create(client, team["owner"]).json()
    r = client.delete(f"/api/v1/webhooks/{hook['id']}", headers=team["owner"].headers)
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["disabled_at"]
    assert deliver(client, hook["url"], hook["secret"]).status_code == 404
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=team["owner"].headers).json()["active"] is False


def test_deliveries_and_alerts_are_listed(client, team):
    hook = create(client, team["owner"]).json()
    deliver(client, hook["url"], hook["secret"])
    deliver(client, hook["url"], hook["secret"])  # a replay is not a second delivery
    deliveries = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=team["viewer"].headers).json()
    assert len(deliveries) == 1
    d = deliveries[0]
    assert d["items"] == 2 and d["event"] == "firing" and d["delivery_key"].startswith("sha256:")
    assert d["summary"] == "2 alert(s): 2 firing, 0 resolved (HighErrorRate, PaymentLatencyHigh)"
    listed = client.get("/api/v1/webhooks", headers=team["owner"].headers).json()
    assert listed[0]["last_delivery_at"] == d["received_at"]
    alerts = client.get("/api/v1/alerts", headers=team["viewer"].headers).json()
    assert {a["name"] for a in alerts} == {"HighErrorRate", "PaymentLatencyHigh"}
    incident_id = next(a["incident_id"] for a in alerts if a["name"] == "HighErrorRate")
    only = client.get(f"/api/v1/alerts?incident_id={incident_id}&status=firing", headers=team["member"].headers).json()
    assert [a["name"] for a in only] == ["HighErrorRate"] and only[0]["fingerprint"] == "c5a3b2e1f0d4a6b7"
    assert client.get("/api/v1/alerts?status=resolved", headers=team["owner"].headers).json() == []
    assert client.get("/api/v1/alerts?status=bogus", headers=team["owner"].headers).status_code == 422


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_manage(client, team, role):
    hook = create(client, team["owner"]).json()
    assert create(client, team[role]).status_code == 403
    assert client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=team[role].headers).status_code == 403
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=team[role].headers).status_code == 403
    assert client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=team[role].headers).status_code == 200


def test_other_organizations_ids_are_404(client, factory, team):
    hook = create(client, team["owner"]).json()
    deliver(client, hook["url"], hook["secret"])
    stranger = factory.team()["owner"]
    for method, path in (("get", f"/api/v1/webhooks/{hook['id']}"), ("post", f"/api/v1/webhooks/{hook['id']}/rotate-secret"),
                         ("delete", f"/api/v1/webhooks/{hook['id']}"),
                         ("get", f"/api/v1/webhooks/{hook['id']}/deliveries")):
        r = getattr(client, method)(path, headers=stranger.headers)
        assert r.status_code == 404, (method, path)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/webhooks", headers=stranger.headers).json() == []
    assert client.get("/api/v1/alerts", headers=stranger.headers).json() == []


@pytest.mark.parametrize("body,field", [
    ({"kind": "pagerduty", "name": "x"}, "kind"), ({"kind": "grafana"}, "name"),
    ({"kind": "grafana", "name": "x", "default_severity": "SEV-9"}, "default_severity"),
    ({"kind": "grafana", "name": "x", "colour": "red"}, "colour"), ({"kind": "grafana", "name": ""}, "name"),
])
def test_invalid_create_is_422(client, team, body, field):
    r = client.post("/api/v1/webhooks", headers=team["owner"].headers, json=body)
    assert r.status_code == 422 and field in r.json()["detail"]


def test_requires_a_token(client):
    assert client.get("/api/v1/webhooks").status_code == 401
    assert client.post("/api/v1/webhooks", json={"kind": "grafana", "name": "x"}).status_code == 401


def test_generic_hook_end_to_end_through_the_api(client, team):
    hook = create(client, team["owner"], kind="generic_alert", name="cron").json()
    assert deliver(client, hook["url"], hook["secret"], GENERIC_FIRING).json()["created"] == 1
    (a,) = client.get(f"/api/v1/alerts?webhook_id={hook['id']}", headers=team["owner"].headers).json()
    assert (a["name"], a["service"], a["severity"], a["status"]) == ("QueueBacklog", "orders", "SEV-2", "firing")
