"""Slack as incident evidence, end to end through the real HTTP surface: a linked channel's messages and thread
replies become cited updates (display names, mentions, edits and deletions followed, cursor pagination, Retry-After),
the Events API (URL check, v0 signatures, stale and replayed requests, retries) and the `/blametrail` command.

Slack is a local server speaking its Web API (tests/vendors/slack_server.py); requests to us are signed exactly as
Slack signs them: v0=HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from blametrail import db
from blametrail.vendors import service as vendors
from tests.vendors.slack_server import SlackServer

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0INCIDENT"


@pytest.fixture
def slack():
    server = SlackServer()
    server.retry_after = "0"
    server.users = {
        "U0DANA": {"id": "U0DANA", "name": "dana", "profile": {"display_name": "Dana", "real_name": "Dana Scully"}},
        "U0OMAR": {"id": "U0OMAR", "name": "omar", "profile": {"display_name": "", "real_name": "Omar Little"}},
    }
    yield server
    server.close()


def ts(rt, minutes: float) -> str:
    return f"{(rt.clock.now() + timedelta(minutes=minutes)).timestamp():.6f}"


def setup(client, factory, slack):
    owner = factory.member(factory.org(plan="pro"), "owner")
    r = client.put("/api/v1/integrations/slack", headers=owner.headers, json={
        "bot_token": "xoxb-good-token", "signing_secret": SECRET, "base_url": slack.base_url})
    assert r.status_code == 200, r.text
    incident = client.post("/api/v1/incidents", headers=owner.headers,
                           json={"title": "Checkout errors", "services": ["checkout"], "severity": "SEV-2"}).json()
    return owner, incident["id"], r.json()["inbound_urls"]


def updates(client, who, iid: int) -> list[dict]:
    items = client.get(f"/api/v1/incidents/{iid}/timeline", headers=who.headers).json()
    items = items["items"] if isinstance(items, dict) else items
    return [e for e in items if e.get("source") == "update" or e.get("kind") == "update"]


def signed(body: bytes, when: float, secret: str = SECRET, **headers) -> dict:
    stamp = str(int(when))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}", **headers}


def path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_a_channel_becomes_updates_with_names_threads_pages_and_a_429(client, factory, rt, slack):
    owner, iid, _ = setup(client, factory, slack)
    slack.message(CHANNEL, ts(rt, 1), "Checkout 500s after the deploy, <@U0OMAR> can you look?")
    slack.message(CHANNEL, ts(rt, 2), "Rolling back <https://ci.example/run/9|run 9> now", user="U0OMAR")
    slack.message(CHANNEL, ts(rt, 3), "Error rate back to normal &amp; holding")
    slack.message(CHANNEL, ts(rt, 4), "Confirmed from the dashboards", user="U0OMAR", thread_ts=ts(rt, 2))
    slack.message(CHANNEL, ts(rt, 1.5), "Dana has joined the channel", subtype="channel_join")
    slack.page_size = 2  # every read crosses pages
    slack.rate_limit_next = 1  # the first call is told to wait (Retry-After: 0) and is retried
    rt.clock.advance(minutes=5)

    r = client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers, json={"channel_id": CHANNEL})
    assert r.status_code == 200, r.text
    state = client.get(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers).json()
    assert state["status"] == "imported" and state["complete"] is True, state
    assert state["counts"] == {"added": 4, "edited": 0, "removed": 0, "unchanged": 0}
    got = [(u.get("author"), u.get("description") or u.get("body")) for u in updates(client, owner, iid)]
    assert ("Dana", "Checkout 500s after the deploy, @Omar Little can you look?") in got
    assert ("Omar Little", "Rolling back run 9 (https://ci.example/run/9) now") in got
    assert ("Dana", "Error rate back to normal & holding") in got
    assert ("Omar Little", "(in a thread) Confirmed from the dashboards") in got
    assert not any("joined" in (b or "") for _, b in got)
    methods = [m for m, _ in slack.calls]
    assert methods.count("conversations.history") >= 3 and "conversations.replies" in methods  # pages followed

    # again: nothing doubles; an edit changes the text, a deleted message leaves the timeline
    slack.channels[CHANNEL][2]["text"] = "Error rate back to normal, holding for 10 min"
    slack.channels[CHANNEL][2]["edited"] = {"user": "U0DANA", "ts": ts(rt, 1)}
    del slack.channels[CHANNEL][0]
    r = client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers, json={"channel_id": CHANNEL})
    assert r.json()["status"] == "queued"  # the import is a job; the answer comes before it
    state = client.get(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers).json()
    assert state["counts"] == {"added": 0, "edited": 1, "removed": 1, "unchanged": 2}
    bodies = [u.get("description") or u.get("body") for u in updates(client, owner, iid)]
    assert "Error rate back to normal, holding for 10 min" in bodies and len(bodies) == 3


def test_slack_errors_are_said_in_plain_words_and_kept_as_the_status(client, factory, rt, slack):
    owner, iid, _ = setup(client, factory, slack)
    url = f"/api/v1/incidents/{iid}/slack-channel"
    assert client.post(url, headers=owner.headers, json={"channel_id": "C0NOPE"}).status_code == 200
    r = client.get(url, headers=owner.headers)
    assert r.json()["status"] == "failed" and "invite the bot" in r.json()["error"]
    slack.channels[CHANNEL] = []
    slack.retry_after, slack.rate_limit_next = "120", 5  # longer than a worker waits
    client.post(url, headers=owner.headers, json={"channel_id": CHANNEL})
    r = client.get(url, headers=owner.headers)
    assert r.json()["status"] == "failed" and "wait 120 s" in r.json()["error"]
    assert client.get("/api/v1/integrations/slack", headers=owner.headers).json()["status"] == "error"
    bad = client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers, json={"channel_id": "general"})
    assert bad.status_code == 422


def test_linking_needs_slack_set_up_a_writer_and_an_incident_of_ones_own(client, factory, slack):
    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = client.post("/api/v1/incidents", headers=owner.headers, json={"title": "x", "services": ["a"]}).json()["id"]
    r = client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers, json={"channel_id": CHANNEL})
    assert r.status_code == 409 and "Slack is not set up" in r.json()["detail"]
    slug = factory.org(plan="pro")
    admin, member, viewer = (factory.member(slug, role) for role in ("admin", "member", "viewer"))
    client.put("/api/v1/integrations/slack", headers=admin.headers, json={
        "bot_token": "xoxb-good-token", "signing_secret": SECRET, "base_url": slack.base_url})
    mine = client.post("/api/v1/incidents", headers=member.headers, json={"title": "y", "services": ["a"]}).json()["id"]
    assert client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=admin.headers,
                       json={"channel_id": CHANNEL}).status_code == 404  # another organization's incident
    assert client.post(f"/api/v1/incidents/{mine}/slack-channel", headers=viewer.headers,
                       json={"channel_id": CHANNEL}).status_code == 403
    assert client.post(f"/api/v1/incidents/{mine}/slack-channel", headers=member.headers,
                       json={"channel_id": CHANNEL}).status_code == 200


def test_events_verify_signatures_answer_the_check_and_handle_each_event_once(client, factory, rt, slack):
    owner, iid, urls = setup(client, factory, slack)
    client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers, json={"channel_id": CHANNEL})
    events = path(urls["events"])
    now = rt.clock.now().timestamp()

    check = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                        "type": "url_verification"}).encode()
    r = client.post(events, content=check, headers=signed(check, now, **{"Content-Type": "application/json"}))
    assert r.status_code == 200 and r.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert client.post(events, content=check, headers=signed(check, now, secret="wrong")).status_code == 401
    stale = client.post(events, content=check, headers=signed(check, now - 6 * 60))
    assert stale.status_code == 401 and "five minutes" in stale.json()["detail"]
    assert client.post(events, content=check, headers={"Content-Type": "application/json"}).status_code == 401
    assert client.post(path(urls["events"]).replace(urls["events"].split("/")[-2], "x" * 20), content=check,
                       headers=signed(check, now)).status_code == 401

    slack.message(CHANNEL, ts(rt, 1), "Cache node 3 is out of memory")
    event = json.dumps({"token": "x", "team_id": "T0ACME", "api_app_id": "A0APP", "type": "event_callback",
                        "event_id": "Ev08MFMKH6", "event_time": int(now), "event": {
                            "type": "message", "channel": CHANNEL, "user": "U0DANA", "text": "Cache node 3 is out of "
                            "memory", "ts": ts(rt, 1), "channel_type": "channel"}}).encode()
    r = client.post(events, content=event, headers=signed(event, now))
    assert r.status_code == 200 and r.json()["queued"] == "import"
    assert [u.get("author") for u in updates(client, owner, iid)] == ["Dana"]
    retry = client.post(events, content=event, headers=signed(event, now, **{"X-Slack-Retry-Num": "1",
                                                                               "X-Slack-Retry-Reason": "http_timeout"}))
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    other = json.dumps({"type": "event_callback", "event_id": "Ev2", "event": {"type": "reaction_added"}}).encode()
    assert client.post(events, content=other, headers=signed(other, now)).json()["ignored"] == "reaction_added"
    with db.transaction(rt.factory) as s:
        assert vendors.first_time(session=s, org_id=owner.actor.org_id, kind="slack", event_id="Ev08MFMKH6",
                                  now=rt.clock.now()) is False


def test_the_slash_command_updates_and_resolves_and_the_draft_cites_the_channel(client, factory, rt, slack):
    owner, iid, urls = setup(client, factory, slack)
    slack.message(CHANNEL, ts(rt, 1), "Payments timing out since 10:00")
    rt.clock.advance(minutes=2)
    client.post(f"/api/v1/incidents/{iid}/slack-channel", headers=owner.headers, json={"channel_id": CHANNEL})
    commands = path(urls["commands"])
    now = rt.clock.now().timestamp()

    def command(text: str, channel: str = CHANNEL):
        body = urlencode({"token": "x", "team_id": "T0ACME", "channel_id": channel, "user_id": "U0DANA",
                          "user_name": "dana", "command": "/blametrail", "text": text,
                          "response_url": "https://hooks.slack.com/commands/1/2/3"}).encode()
        return client.post(commands, content=body, headers=signed(
            body, now, **{"Content-Type": "application/x-www-form-urlencoded"}))

    assert "update <what happened>" in command("").json()["text"]
    assert "not linked" in command("update hello", channel="C0ELSEWHERE").json()["text"]
    r = command("update Rolled back payments to v4.1")
    assert r.status_code == 200 and r.json()["response_type"] == "in_channel"
    assert ("dana (Slack)", "Rolled back payments to v4.1") in [
        (u.get("author"), u.get("description") or u.get("body")) for u in updates(client, owner, iid)]
    r = command("resolve")
    assert r.json()["response_type"] == "in_channel" and f"/incidents/{iid}/postmortem" in r.json()["text"]
    assert "already resolved" in command("resolve").json()["text"]

    incident = client.get(f"/api/v1/incidents/{iid}", headers=owner.headers).json()
    assert incident["status"] == "resolved" and incident["resolved_by"] == "dana (Slack)"
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["sections"] is not None, pm
    slack_ids = {f"upd_{u['id']}" if "id" in u else u.get("evidence_id") for u in updates(client, owner, iid)}
    cited = {e for t in pm["sections"]["timeline"] for e in t["evidence"]}
    assert cited & {x for x in slack_ids if x}, (cited, slack_ids)  # the draft cites the channel's messages
    unsigned = client.post(commands, content=b"text=resolve", headers={"Content-Type":
                                                                      "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401


def test_drafted_and_published_notices_reach_the_notice_channel(client, factory, rt, slack):
    owner, iid, _ = setup(client, factory, slack)
    client.put("/api/v1/integrations/slack", headers=owner.headers, json={
        "notify_channel": "C0NOTICES", "base_url": slack.base_url})  # secrets left out: kept
    rt.clock.advance(minutes=3)
    assert client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers).status_code == 200
    drafted = [p for p in slack.posted if p["channel"] == "C0NOTICES"]
    assert len(drafted) == 1 and "Postmortem drafted by builtin for incident" in drafted[0]["text"]
    assert f"/incidents/{iid}/postmortem|open it>" in drafted[0]["text"]
    assert client.post(f"/api/v1/incidents/{iid}/postmortem/publish", headers=owner.headers).status_code == 200
    published = slack.posted[-1]
    assert published["text"].startswith(f"Postmortem published (version 1) by {owner.email}")

    slack.token = "xoxb-other"  # the bot token stops working: the notice fails and says why on the integration
    second = client.post("/api/v1/incidents", headers=owner.headers, json={"title": "Again", "services": ["a"]}).json()
    client.post(f"/api/v1/incidents/{second['id']}/resolve", headers=owner.headers)
    state = client.get("/api/v1/integrations/slack", headers=owner.headers).json()
    assert state["status"] == "error" and "invalid_auth" in state["last_error"]
