"""Outbound webhooks, end to end: endpoints through the API, events delivered signed per Standard Webhooks (checked
by an independent verifier written from the specification), retried with back-off, redelivered by hand, turned off
after sustained failure; the delivery log; roles and isolation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from werkzeug import Response

from blametrail.outbound import service as outbound

API = "/api/v1/outbound-webhooks"


def verify(secret: str, headers, body: bytes, now_ts: int, tolerance: int = 300) -> dict:
    """Verify as the Standard Webhooks spec says a receiver must: id.timestamp.body, HMAC-SHA256, base64, v1."""
    msg_id, ts, sigs = headers["webhook-id"], int(headers["webhook-timestamp"]), headers["webhook-signature"]
    assert abs(now_ts - ts) <= tolerance, "timestamp outside the tolerance"
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    assert any(part.split(",", 1)[1] == expected for part in sigs.split(" ") if part.startswith("v1,")), "bad signature"
    return json.loads(body)


@pytest.fixture
def receiver(httpserver):
    got = []
    answers = []

    def handler(request):
        got.append((dict(request.headers), request.get_data()))
        status = answers.pop(0) if answers else 204
        return Response("nope" if status >= 400 else "", status=status)

    httpserver.expect_request("/hooks", method="POST").respond_with_handler(handler)
    return {"url": httpserver.url_for("/hooks"), "got": got, "answers": answers}


def _endpoint(client, who, url, events=("incident.opened", "incident.resolved", "postmortem.drafted",
                                         "postmortem.published", "action_item.changed")):
    r = client.post(API, json={"url": url, "description": "our bus", "events": list(events)}, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_events_arrive_signed_and_the_log_shows_them(client, factory, rt, clock, receiver):
    owner = factory.member(factory.org(plan="pro"), "owner")
    ep = _endpoint(client, owner, receiver["url"])
    assert ep["secret"].startswith("whsec_") and "secret" not in client.get(f"{API}/{ep['id']}",
                                                                            headers=owner.headers).json()
    iid = client.post("/api/v1/incidents", json={"title": "Checkout errors", "services": ["checkout"]},
                      headers=owner.headers).json()["id"]
    clock.advance(minutes=10)
    assert client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers).status_code == 200
    types = []
    for headers, body in receiver["got"]:
        headers = {k.lower(): v for k, v in headers.items()}
        payload = verify(ep["secret"], headers, body, int(clock.now().timestamp()), tolerance=3600)
        types.append(payload["type"])
        assert payload["data"].get("incident_id") == iid
    assert types == ["incident.opened", "incident.resolved", "postmortem.drafted"]
    log = client.get(f"{API}/{ep['id']}/deliveries", headers=owner.headers).json()["items"]
    assert [d["status"] for d in log] == ["succeeded"] * 3 and log[0]["last_status_code"] == 204

    rotated = client.post(f"{API}/{ep['id']}/rotate-secret", headers=owner.headers).json()["secret"]
    assert rotated != ep["secret"]
    test = client.post(f"{API}/{ep['id']}/test", headers=owner.headers).json()
    assert test["ok"] is True and test["status_code"] == 204
    headers, body = receiver["got"][-1]
    assert verify(rotated, {k.lower(): v for k, v in headers.items()}, body, int(clock.now().timestamp()))["type"] \
        == "ping"


def test_failures_retry_with_back_off_and_sustained_failure_turns_the_endpoint_off(client, factory, rt, clock,
                                                                                     receiver):
    owner = factory.member(factory.org(plan="pro"), "owner")
    ep = _endpoint(client, owner, receiver["url"], events=("incident.opened",))
    receiver["answers"].extend([500, 503])
    client.post("/api/v1/incidents", json={"title": "x", "services": ["a"]}, headers=owner.headers)
    (d,) = client.get(f"{API}/{ep['id']}/deliveries", headers=owner.headers).json()["items"]
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 500)
    assert "HTTP 500" in d["last_error"]
    clock.advance(seconds=6)  # the first retry is due after 5 s
    rt.sweep_once()
    (d,) = client.get(f"{API}/{ep['id']}/deliveries", headers=owner.headers).json()["items"]
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 2, 503)
    clock.advance(minutes=6)
    rt.sweep_once()
    (d,) = client.get(f"{API}/{ep['id']}/deliveries", headers=owner.headers).json()["items"]
    assert (d["status"], d["attempts"]) == ("succeeded", 3)
    first, third = receiver["got"][0][0], receiver["got"][2][0]
    assert {k.lower(): v for k, v in first.items()}["webhook-id"] == {k.lower(): v for k, v in third.items()}[
        "webhook-id"]  # the same message id on every retry

    # a receiver down for more than a day is turned off, with the reason on the endpoint
    receiver["answers"].extend([500] * 40)
    for _ in range(outbound.MIN_FAILURES + 2):
        client.post("/api/v1/incidents", json={"title": "y", "services": ["b"]}, headers=owner.headers)
        clock.advance(hours=3)
    rt.sweep_once()
    state = client.get(f"{API}/{ep['id']}", headers=owner.headers).json()
    assert state["enabled"] is False and "Turned off" in state["disabled_reason"]
    sent = len(receiver["got"])
    client.post("/api/v1/incidents", json={"title": "z", "services": ["c"]}, headers=owner.headers)
    assert len(receiver["got"]) == sent  # nothing goes to a turned-off endpoint

    receiver["answers"].clear()
    client.patch(f"{API}/{ep['id']}", json={"enabled": True}, headers=owner.headers)
    failed = next(d for d in client.get(f"{API}/{ep['id']}/deliveries", headers=owner.headers).json()["items"]
                  if d["status"] != "succeeded")
    r = client.post(f"{API}/{ep['id']}/deliveries/{failed['id']}/redeliver", headers=owner.headers)
    assert r.status_code == 200
    again = next(d for d in client.get(f"{API}/{ep['id']}/deliveries", headers=owner.headers).json()["items"]
                 if d["id"] == failed["id"])
    assert again["status"] == "succeeded"


def test_bad_input_roles_and_other_organizations(client, factory):
    slug = factory.org(plan="pro")
    owner, member = factory.member(slug, "owner"), factory.member(slug, "member")
    for body in ({"url": "ftp://x", "events": ["incident.opened"]}, {"url": "https://x.example/h", "events": []},
                 {"url": "https://x.example/h", "events": ["incident.exploded"]}):
        assert client.post(API, json=body, headers=owner.headers).status_code == 422
    assert client.post(API, json={"url": "https://x.example/h", "events": ["incident.opened"]},
                       headers=member.headers).status_code == 403
    ep = client.post(API, json={"url": "https://x.example/h", "events": ["incident.opened"]},
                     headers=owner.headers).json()
    assert client.get(API, headers=member.headers).json()["items"][0]["id"] == ep["id"]
    other = factory.member(factory.org(plan="pro"), "owner")
    assert client.get(f"{API}/{ep['id']}", headers=other.headers).status_code == 404
    assert client.delete(f"{API}/{ep['id']}", headers=other.headers).status_code == 404
    assert client.delete(f"{API}/{ep['id']}", headers=owner.headers).status_code == 204


def test_the_schedule_backs_off():
    assert list(outbound.RETRY_SCHEDULE) == sorted(outbound.RETRY_SCHEDULE)
    assert outbound.RETRY_SCHEDULE[0] == timedelta(seconds=5)


def test_a_consumer_verifies_our_signature_with_the_standard_webhooks_library(client, factory, clock, receiver):
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    clock.set(datetime.now(UTC))  # why: the library checks the timestamp against the real clock (5 minutes)
    owner = factory.member(factory.org(plan="pro"), "owner")
    ep = _endpoint(client, owner, receiver["url"], events=("incident.opened",))
    iid = client.post("/api/v1/incidents", json={"title": "Queue backlog", "services": ["jobs"]},
                      headers=owner.headers).json()["id"]
    headers, body = receiver["got"][-1]
    headers = {k.lower(): v for k, v in headers.items()}
    payload = Webhook(ep["secret"]).verify(body, headers)
    assert payload["type"] == "incident.opened" and payload["data"]["incident_id"] == iid
    with pytest.raises(WebhookVerificationError):
        Webhook(ep["secret"]).verify(body.replace(b"Queue", b"Qveue"), headers)
    other = client.post(f"{API}/{ep['id']}/rotate-secret", headers=owner.headers).json()["secret"]
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)  # the old message does not verify under the new secret
