"""PagerDuty and Opsgenie as incident sources, end to end through the real HTTP surface: a vendor incident opens,
is acknowledged (time to acknowledge measurable), gets a note (a cited update) and resolves into a drafted
postmortem; deliveries are verified the vendor's way, handled once, and unknown events ignored.

Payloads are the vendors' documented sample shapes (tests/vendors/fixtures/); PagerDuty signs exactly as it documents:
X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>, several comma-separated while a secret rotates."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from sqlalchemy import select

from blametrail import db
from blametrail.incidents.models import Incident

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "pd-signing-secret"


def fixture(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / name).read_text())).encode()


def pd_headers(body: bytes, secret: str = SECRET, extra: str = "") -> dict:
    sig = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"{extra}{sig}", "Content-Type": "application/json",
            "X-Webhook-Id": "PSUB123", "User-Agent": "PagerDuty-Webhook/V3.0"}


def setup(client, factory, kind: str, settings: dict):
    owner = factory.member(factory.org(plan="pro"), "owner")
    r = client.put(f"/api/v1/integrations/{kind}", headers=owner.headers, json=settings)
    assert r.status_code == 200, r.text
    return owner, "/" + r.json()["inbound_urls"]["webhook"].split("/", 3)[3]


def test_a_pagerduty_incident_opens_is_acknowledged_annotated_and_resolves_into_a_draft(client, factory, rt, clock):
    owner, hook = setup(client, factory, "pagerduty", {"signing_secret": SECRET})
    clock.advance(minutes=15)
    body = fixture("pagerduty_incident_triggered.json")
    r = client.post(hook, content=body, headers=pd_headers(body, extra="v1=00ff,"))  # a rotating secret's old one first
    assert r.status_code == 200 and r.json()["outcome"] == "opened", r.text
    iid = r.json()["incident_id"]
    incident = client.get(f"/api/v1/incidents/{iid}", headers=owner.headers).json()
    assert incident["title"] == "Checkout 5xx above 2%" and incident["severity"] == "SEV-1"
    assert incident["services"] == ["checkout"] and incident["status"] == "open"
    again = client.post(hook, content=body, headers=pd_headers(body))
    assert again.json() == {"ok": True, "duplicate": True}  # a retry is not a second incident

    for name in ("pagerduty_incident_acknowledged.json", "pagerduty_incident_annotated.json"):
        body = fixture(name)
        assert client.post(hook, content=body, headers=pd_headers(body)).status_code == 200
    with db.transaction(rt.factory) as s:
        row = s.scalar(select(Incident).where(Incident.id == iid))
        assert row.acknowledged_by == "Tenex Engineer (PagerDuty)"
        assert round((row.acknowledged_at - row.started_at).total_seconds()) == 120  # time to acknowledge
    timeline = client.get(f"/api/v1/incidents/{iid}/timeline", headers=owner.headers).json()
    items = timeline["items"] if isinstance(timeline, dict) else timeline
    note = [e for e in items if "Rolled back checkout to v2.2" in (e.get("description") or e.get("body") or "")]
    assert note and (note[0].get("source") or note[0].get("kind")) == "update"

    body = fixture("pagerduty_incident_resolved.json")
    r = client.post(hook, content=body, headers=pd_headers(body))
    assert r.json()["outcome"] == "resolved"
    incident = client.get(f"/api/v1/incidents/{iid}", headers=owner.headers).json()
    assert incident["status"] == "resolved" and incident["resolved_by"] == "Tenex Engineer (PagerDuty)"
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["sections"] is not None  # drafted on resolve, as any resolve does
    cited = {e for t in pm["sections"]["timeline"] for e in t["evidence"]}
    assert any(c.startswith("upd_") for c in cited)  # the PagerDuty note is cited like an update


def test_pagerduty_refuses_bad_signatures_and_ignores_other_events(client, factory, clock):
    owner, hook = setup(client, factory, "pagerduty", {"signing_secret": SECRET})
    body = fixture("pagerduty_incident_triggered.json")
    assert client.post(hook, content=body, headers=pd_headers(body, secret="wrong")).status_code == 401
    assert client.post(hook, content=body, headers={"Content-Type": "application/json"}).status_code == 401
    tampered = body.replace(b"Checkout 5xx", b"Checkout 4xx")
    assert client.post(hook, content=tampered, headers=pd_headers(body)).status_code == 401
    assert client.get("/api/v1/incidents", headers=owner.headers).json()["items"] == []
    other = json.dumps({"event": {"id": "01X", "event_type": "service.updated", "data": {"id": "PF9KMXH"}}}).encode()
    assert client.post(hook, content=other, headers=pd_headers(other)).json()["ignored"]
    wrong_org, _ = setup(client, factory, "pagerduty", {"signing_secret": "another-secret"})
    assert client.post(hook.replace(hook.split("/")[3], "x" * 24), content=body,
                       headers=pd_headers(body)).status_code == 401


def test_an_opsgenie_alert_attaches_to_the_open_incident_and_closes_it(client, factory, rt, clock):
    owner, hook = setup(client, factory, "opsgenie", {"inbound_secret": "og-secret"})
    open_one = client.post("/api/v1/incidents", headers=owner.headers,
                           json={"title": "Payments slow", "services": ["payments"]}).json()
    clock.advance(minutes=20)
    body = fixture("opsgenie_create.json")
    headers = {"X-BlameTrail-Token": "og-secret", "Content-Type": "application/json"}
    assert client.post(hook, content=body, headers={**headers, "X-BlameTrail-Token": "nope"}).status_code == 401
    r = client.post(hook, content=body, headers=headers)
    assert r.json()["outcome"] == "attached" and r.json()["incident_id"] == open_one["id"]
    payload = json.loads(body)
    for action, extra in (("Acknowledge", {}), ("AddNote", {"note": "Scaled payments to 6 replicas."}),
                          ("Close", {})):
        payload["action"] = action
        payload["alert"] = {**payload["alert"], **extra, "updatedAt": payload["alert"]["updatedAt"] + 1_000_000}
        r = client.post(hook, content=json.dumps(payload).encode(), headers=headers)
        assert r.status_code == 200, r.text
    incident = client.get(f"/api/v1/incidents/{open_one['id']}", headers=owner.headers).json()
    assert incident["status"] == "resolved" and incident["resolved_by"] == "dana@acme.test (Opsgenie)"
    replay = client.post(hook, content=json.dumps(payload).encode(), headers=headers)
    assert replay.json().get("duplicate") is True
