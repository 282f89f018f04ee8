"""Signed outbound webhooks: per-organization endpoints, events recorded as deliveries, sent and retried.

Signing follows the Standard Webhooks specification (standardwebhooks.com): every message carries `webhook-id` (the
same on every retry), `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` of
`"{webhook-id}.{webhook-timestamp}.{body}"`, keyed by the base64-decoded part of the endpoint's `whsec_…` secret.
Hand-written (a dozen lines): the reference `standardwebhooks` package pulls in an HTTP client generator we do not need.

`emit` records one delivery per subscribed, enabled endpoint inside the caller's transaction and queues it after the
commit; `attempt` (the job) sends it once through the outbound guard and schedules the next try with back-off
(RETRY_SCHEDULE); an endpoint failing every attempt for DISABLE_AFTER is turned off with the reason shown. Any
delivery can be sent again by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.errors import NotFound, UpstreamError, ValidationFailed
from blametrail.netguard import OutboundPolicy
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.outbound.models import EVENTS, OutboundDelivery, OutboundEndpoint

DELIVER_TASK = "outbound_deliver"
PING = "ping"
RETRY_SCHEDULE = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                  timedelta(hours=5), timedelta(hours=10), timedelta(hours=10))
DISABLE_AFTER = timedelta(days=1)  # failing every attempt this long (and at least MIN_FAILURES times) → disabled
MIN_FAILURES = 10
MAX_ENDPOINTS = 20
LOST_AFTER = timedelta(seconds=60)  # a queued send not made by then is queued again by the sweep (job lost)
MAX_RESPONSE_NOTE = 500


# --- signing (Standard Webhooks) ------------------------------------------------------------------------------------

def new_secret() -> str:
    """Return a new signing secret, `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the webhook-signature value for a message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def headers_for(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body), "content-type": "application/json",
            "user-agent": "BlameTrail-Webhooks/1"}


# --- endpoints -----------------------------------------------------------------------------------------------------

def _check(url: str, events: list[str], policy: OutboundPolicy) -> list[str]:
    url = (url or "").strip()
    errors = []
    if not url.startswith(("https://", "http://")) or len(url) > 2000:
        errors.append({"loc": ["url"], "msg": "an http(s) URL of at most 2,000 characters"})
    else:
        try:
            policy.check_url(url)
        except UpstreamError as exc:
            errors.append({"loc": ["url"], "msg": str(exc)})
    unknown = [e for e in events if e not in EVENTS]
    if not events or unknown:
        errors.append({"loc": ["events"], "msg": "choose from " + ", ".join(EVENTS)})
    if errors:
        raise ValidationFailed("The endpoint cannot be saved: " + "; ".join(e["msg"] for e in errors) + ".", errors)
    return list(dict.fromkeys(events))


def list_endpoints(*, session: Session, org_id: int) -> list[OutboundEndpoint]:
    return list(session.scalars(select(OutboundEndpoint).where(OutboundEndpoint.org_id == org_id)
                                .order_by(OutboundEndpoint.id)))


def get_or_404(*, session: Session, org_id: int, endpoint_id: int) -> OutboundEndpoint:
    row = session.get(OutboundEndpoint, endpoint_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"Outbound webhook {endpoint_id} not found.")
    return row


def create(*, session: Session, actor: Actor, url: str, description: str, events: list[str], box: SecretBox,
           policy: OutboundPolicy, now: datetime) -> tuple[OutboundEndpoint, str]:
    """Add an endpoint (owners and admins); return it and its secret, shown this once."""
    require(actor.role, Action.MANAGE)
    events = _check(url, events, policy)
    if len(list_endpoints(session=session, org_id=actor.org_id)) >= MAX_ENDPOINTS:
        raise ValidationFailed(f"An organization has at most {MAX_ENDPOINTS} outbound webhooks.")
    secret = new_secret()
    row = OutboundEndpoint(org_id=actor.org_id, url=url.strip(), description=(description or "").strip()[:200],
                           events=events, secret_encrypted=box.encrypt(secret), enabled=True, failure_streak=0,
                           created_by=actor.label, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row, secret


def update(*, session: Session, actor: Actor, row: OutboundEndpoint, policy: OutboundPolicy, now: datetime,
           url: str | None = None, description: str | None = None, events: list[str] | None = None,
           enabled: bool | None = None) -> OutboundEndpoint:
    require(actor.role, Action.MANAGE)
    new_events = _check(url if url is not None else row.url, events if events is not None else row.events, policy)
    row.url, row.events = (url.strip() if url is not None else row.url), new_events
    if description is not None:
        row.description = description.strip()[:200]
    if enabled is not None:
        row.enabled = bool(enabled)
        if enabled:  # why: turned on again by a person: start counting failures afresh
            row.disabled_reason, row.failure_streak, row.first_failure_at = None, 0, None
    row.updated_at = now
    session.flush()
    return row


def rotate_secret(*, session: Session, actor: Actor, row: OutboundEndpoint, box: SecretBox, now: datetime) -> str:
    require(actor.role, Action.MANAGE)
    secret = new_secret()
    row.secret_encrypted, row.updated_at = box.encrypt(secret), now
    session.flush()
    return secret


def delete(*, session: Session, actor: Actor, row: OutboundEndpoint) -> None:
    require(actor.role, Action.MANAGE)
    session.delete(row)
    session.flush()


# --- deliveries ----------------------------------------------------------------------------------------------------

def _new_delivery(row: OutboundEndpoint, event_type: str, data: dict, now: datetime) -> OutboundDelivery:
    return OutboundDelivery(org_id=row.org_id, endpoint_id=row.id, msg_id="msg_" + secrets.token_urlsafe(18),
                            event_type=event_type, payload={"type": event_type, "timestamp": now.isoformat(),
                                                            "data": data},
                            status="pending", attempts=0, next_attempt_at=now + LOST_AFTER, created_at=now)


def emit(*, session: Session, org_id: int, event_type: str, data: dict, now: datetime) -> int:
    """Record the event for every enabled endpoint subscribed to it; each is sent after the caller's commit."""
    rows = session.scalars(select(OutboundEndpoint).where(OutboundEndpoint.org_id == org_id,
                                                          OutboundEndpoint.enabled.is_(True))).all()
    count = 0
    for row in rows:
        if event_type not in (row.events or []):
            continue
        delivery = _new_delivery(row, event_type, data, now)
        session.add(delivery)
        session.flush()
        db.defer(session, DELIVER_TASK, delivery.id)
        count += 1
    return count


def ping(*, session: Session, actor: Actor, row: OutboundEndpoint, now: datetime) -> OutboundDelivery:
    """Record a `ping` message to one endpoint (the Test button), to be sent at once."""
    require(actor.role, Action.MANAGE)
    delivery = _new_delivery(row, PING, {"endpoint_id": row.id, "message": "BlameTrail can reach this endpoint."},
                             now)
    session.add(delivery)
    session.flush()
    return delivery


def list_deliveries(*, session: Session, row: OutboundEndpoint, limit: int = 100) -> list[OutboundDelivery]:
    return list(session.scalars(select(OutboundDelivery).where(OutboundDelivery.endpoint_id == row.id)
                                .order_by(OutboundDelivery.id.desc()).limit(limit)))


def get_delivery_or_404(*, session: Session, row: OutboundEndpoint, delivery_id: int) -> OutboundDelivery:
    delivery = session.get(OutboundDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != row.id:
        raise NotFound(f"Delivery {delivery_id} not found.")
    return delivery


def redeliver(*, session: Session, actor: Actor, delivery: OutboundDelivery, now: datetime) -> OutboundDelivery:
    """Send a delivery again (same webhook-id: receivers de-duplicate on it), as a person asked."""
    require(actor.role, Action.MANAGE)
    delivery.status, delivery.next_attempt_at = "pending", now + LOST_AFTER
    session.flush()
    db.defer(session, DELIVER_TASK, delivery.id)
    return delivery


def due(*, session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Deliveries whose next try is due: retries (no job waits for them) and queued sends whose job was lost
    (their next_attempt_at is LOST_AFTER past the queueing). Receivers de-duplicate on webhook-id in any case."""
    return list(session.scalars(select(OutboundDelivery.id).where(
        OutboundDelivery.status == "pending", OutboundDelivery.next_attempt_at <= now)
        .order_by(OutboundDelivery.next_attempt_at).limit(limit)))


def prepare(*, session: Session, delivery_id: int, box: SecretBox) -> dict | None:
    """What the sender needs, read in a short transaction: url, body bytes, secret; None when nothing is to send."""
    delivery = session.get(OutboundDelivery, delivery_id)
    if delivery is None or delivery.status != "pending":
        return None
    row = session.get(OutboundEndpoint, delivery.endpoint_id)
    if row is None or (not row.enabled and delivery.event_type != PING):
        return None
    try:
        secret = box.decrypt(row.secret_encrypted)
    except ValueError:
        return {"error": "The endpoint's secret cannot be opened with the configured keys: rotate it."}
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    return {"url": row.url, "body": body, "secret": secret, "msg_id": delivery.msg_id}


def record(*, session: Session, delivery_id: int, now: datetime, status_code: int | None, error: str | None) -> str:
    """Record one attempt; schedule the next with back-off, or give up; turn off an endpoint failing for too long."""
    delivery = session.get(OutboundDelivery, delivery_id)
    row = session.get(OutboundEndpoint, delivery.endpoint_id) if delivery else None
    if delivery is None or row is None:
        return "gone"
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code = now, status_code
    delivery.last_error = (error or "")[:MAX_RESPONSE_NOTE] or None
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "succeeded", now, None
        row.failure_streak, row.first_failure_at = 0, None
        session.flush()
        return "succeeded"
    row.failure_streak += 1
    row.first_failure_at = row.first_failure_at or now
    if delivery.attempts <= len(RETRY_SCHEDULE) and delivery.event_type != PING:
        delivery.next_attempt_at = now + RETRY_SCHEDULE[delivery.attempts - 1]
    else:
        delivery.status, delivery.next_attempt_at = "failed", None
    if (row.enabled and row.failure_streak >= MIN_FAILURES and now - row.first_failure_at >= DISABLE_AFTER):
        row.enabled = False
        row.disabled_reason = (f"Turned off on {now:%Y-%m-%d %H:%M} UTC: every delivery since "
                               f"{row.first_failure_at:%Y-%m-%d %H:%M} UTC failed ({row.failure_streak} attempts; "
                               f"last: {delivery.last_error or f'HTTP {status_code}'}). Fix the receiver, then turn "
                               "it on again.")
    session.flush()
    return "failed" if delivery.status == "failed" else "retrying"
