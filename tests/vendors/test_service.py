"""Vendor integrations: settings with write-only secrets, the Test button's plain words, roles and isolation, and the
replay memory of inbound events. Slack is the vendor used here; its Web API is a local wire-protocol server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.vendors import service as vendors
from blametrail.vendors.models import VendorIntegration
from tests.vendors.slack_server import SlackServer


@pytest.fixture
def slack():
    server = SlackServer()
    yield server
    server.close()


def _owner(factory):
    return factory.member(factory.org(plan="pro"), "owner")


def _put(client, who, body):
    return client.put("/api/v1/integrations/slack", headers=who.headers, json=body)


def test_settings_keep_secrets_write_only_and_sealed(client, factory, rt, slack):
    owner = _owner(factory)
    r = _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "s3cret", "notify_channel": "C01",
                             "base_url": slack.base_url})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["configured"] and body["settings"] == {"notify_channel": "C01", "base_url": slack.base_url}
    assert body["secrets_set"] == ["bot_token", "signing_secret"]
    assert "xoxb-good-token" not in r.text and "s3cret" not in r.text
    assert set(body["inbound_urls"]) == {"events", "commands"}
    assert body["inbound_urls"]["events"].endswith("/events") and "/inbound/slack/" in body["inbound_urls"]["events"]
    with db.transaction(rt.factory) as s:
        stored = s.scalar(select(VendorIntegration.secrets_encrypted))
        assert "xoxb" not in stored
    # a later PUT without the secrets keeps them; other settings left out are cleared
    r = _put(client, owner, {"base_url": slack.base_url})
    assert r.status_code == 200 and r.json()["secrets_set"] == ["bot_token", "signing_secret"]
    assert r.json()["settings"] == {"base_url": slack.base_url}
    assert client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()["ok"] is True


def test_the_test_button_says_in_plain_words_what_slack_answered(client, factory, slack):
    owner = _owner(factory)
    _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "x", "base_url": slack.base_url})
    ok = client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()
    assert ok["ok"] and ok["detail"] == "Connected to the Acme workspace as @blametrail." and ok["latency_ms"] >= 0
    assert client.get("/api/v1/integrations/slack", headers=owner.headers).json()["status"] == "ok"

    _put(client, owner, {"bot_token": "xoxb-revoked", "base_url": slack.base_url})
    bad = client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()
    assert not bad["ok"] and bad["detail"].startswith("Slack rejected the bot token (invalid_auth)")
    read = client.get("/api/v1/integrations/slack", headers=owner.headers).json()
    assert read["status"] == "error" and "invalid_auth" in read["last_error"]

    _put(client, owner, {"bot_token": "xoxb-good-token", "base_url": slack.base_url})
    slack.rate_limit_next = 1
    limited = client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()
    assert not limited["ok"] and "HTTP 429" in limited["detail"] and "30 s" in limited["detail"]


def test_a_slow_slack_is_reported_as_a_timeout(client, factory, slack, rt, monkeypatch):
    owner = _owner(factory)
    monkeypatch.setattr(rt.settings, "vendor_timeout_seconds", 1.0)
    _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "x", "base_url": slack.base_url})
    slack.delay = 2.5
    r = client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()
    assert not r["ok"] and "did not answer in time" in r["detail"]


def test_an_unreachable_slack_is_reported_with_its_address(client, factory):
    owner = _owner(factory)
    _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "x", "base_url": "http://127.0.0.1:9/api/"})
    r = client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()
    assert not r["ok"] and "Could not reach Slack at 127.0.0.1:9" in r["detail"]


def test_bad_settings_get_clear_422s_and_store_nothing(client, factory, rt):
    owner = _owner(factory)
    cases = [
        ({"signing_secret": "x"}, "bot_token"),
        ({"bot_token": "t", "signing_secret": "x", "colour": "red"}, "colour"),
        ({"bot_token": "t", "signing_secret": "x", "base_url": "https://u:p@slack.example/api/"}, "base_url"),
        ({"bot_token": "t", "signing_secret": "x", "base_url": "http://169.254.169.254/"}, "base_url"),
        ({"bot_token": 5, "signing_secret": "x"}, "bot_token"),
        ({"bot_token": "t" * 600, "signing_secret": "x"}, "bot_token"),
    ]
    for body, field in cases:
        r = _put(client, owner, body)
        assert r.status_code == 422, (body, r.text)
        assert any(e["loc"][-1] == field for e in r.json()["errors"]), r.json()
    assert client.put("/api/v1/integrations/slack", headers=owner.headers, content=b"{nope",
                      ).status_code in (400, 422)
    assert client.put("/api/v1/integrations/teams", headers=owner.headers, json={}).status_code == 404
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(VendorIntegration)) is None


def test_roles_and_organizations(client, factory, slack):
    org = factory.org(plan="pro")
    owner, admin = factory.member(org, "owner"), factory.member(org, "admin")
    member, viewer = factory.member(org, "member"), factory.member(org, "viewer")
    other = _owner(factory)
    assert _put(client, admin, {"bot_token": "xoxb-good-token", "signing_secret": "x",
                                "base_url": slack.base_url}).status_code == 200
    for who in (member, viewer):
        assert _put(client, who, {"bot_token": "t", "signing_secret": "x"}).status_code == 403
        assert client.post("/api/v1/integrations/slack/test", headers=who.headers).status_code == 403
        assert client.delete("/api/v1/integrations/slack", headers=who.headers).status_code == 403
        seen = client.get("/api/v1/integrations/slack", headers=who.headers).json()
        assert seen["configured"] and "settings" not in seen and seen["inbound_urls"] == {}
    listed = client.get("/api/v1/integrations", headers=owner.headers).json()
    assert [i["kind"] for i in listed][:1] == ["slack"] and listed[0]["configured"]
    assert all(not i["configured"] for i in listed[1:])
    # another organization sees nothing of it and cannot test or remove it
    assert client.get("/api/v1/integrations/slack", headers=other.headers).json()["configured"] is False
    assert client.post("/api/v1/integrations/slack/test", headers=other.headers).status_code == 404
    assert client.delete("/api/v1/integrations/slack", headers=other.headers).status_code == 404
    assert client.delete("/api/v1/integrations/slack", headers=owner.headers).status_code == 204
    assert client.get("/api/v1/integrations/slack", headers=owner.headers).json()["configured"] is False


def test_an_inbound_event_is_handled_once(rt, factory, client, slack):
    owner = _owner(factory)
    _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "x", "base_url": slack.base_url})
    with db.transaction(rt.factory) as s:
        row = s.scalar(select(VendorIntegration))
        assert vendors.by_inbound(session=s, kind="slack", uid=row.inbound_uid).id == row.id
        assert vendors.by_inbound(session=s, kind="pagerduty", uid=row.inbound_uid) is None
        assert vendors.by_inbound(session=s, kind="slack", uid="nope") is None
        now = rt.clock.now()
        assert vendors.first_time(session=s, org_id=row.org_id, kind="slack", event_id="Ev1", now=now)
        assert not vendors.first_time(session=s, org_id=row.org_id, kind="slack", event_id="Ev1", now=now)
        assert vendors.first_time(session=s, org_id=row.org_id, kind="slack", event_id="Ev2", now=now)
        assert vendors.purge_events(session=s, now=now + vendors.EVENT_RETENTION * 2) == 2


def test_secrets_sealed_under_a_lost_key_must_be_entered_again(client, factory, rt, slack):
    owner = _owner(factory)
    _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "x", "base_url": slack.base_url})
    with db.transaction(rt.factory) as s:
        s.scalar(select(VendorIntegration)).secrets_encrypted = "gAAAAAB-not-ours"
    tested = client.post("/api/v1/integrations/slack/test", headers=owner.headers).json()
    assert not tested["ok"] and "enter them again" in tested["detail"]
    assert client.get("/api/v1/integrations/slack", headers=owner.headers).json()["secrets_set"] == []
    refused = _put(client, owner, {"base_url": slack.base_url})  # nothing to keep: the required secrets are asked for
    assert refused.status_code == 422 and "bot_token" in refused.text
    assert _put(client, owner, {"bot_token": "xoxb-good-token", "signing_secret": "y",
                                "base_url": slack.base_url}).status_code == 200
