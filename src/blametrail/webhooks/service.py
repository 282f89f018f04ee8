"""Inbound webhooks (alert and deploy senders): create (secret shown once), disable, authenticate, record deliveries."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.crypto import SecretBox, new_secret, same
from blametrail.errors import NotFound, SecretUndecryptable, Unauthenticated, ValidationFailed
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.webhooks.models import WEBHOOK_KINDS, Webhook, WebhookDelivery

URL_PATH = {"alertmanager": "alertmanager", "grafana": "grafana", "generic_alert": "alerts", "github": "github",
            "generic_deploy": "deploys"}
KIND_BY_PATH = {v: k for k, v in URL_PATH.items()}


def url_for(webhook: Webhook, public_url: str) -> str:
    """Return the URL senders post to."""
    return f"{public_url.rstrip('/')}/webhooks/{URL_PATH[webhook.kind]}/{webhook.uid}"


def create(
    *, session: Session, actor: Actor, box: SecretBox, kind: str, name: str, now: datetime,
    default_service: str | None = None, default_severity: str = "SEV-3", environment: str | None = None,
    open_incidents: bool = True, auto_resolve: bool = False,
) -> tuple[Webhook, str]:
    """Create a webhook receiver; return it and its secret (shown this once)."""
    require(actor.role, Action.MANAGE)
    if kind not in WEBHOOK_KINDS:
        raise ValidationFailed(f"Unknown webhook kind {kind!r}: choose one of {', '.join(WEBHOOK_KINDS)}.",
                               [{"loc": ["kind"], "msg": "unknown kind"}])
    if default_severity not in ("SEV-1", "SEV-2", "SEV-3", "SEV-4"):
        raise ValidationFailed("default_severity must be SEV-1..SEV-4.", [{"loc": ["default_severity"], "msg": "invalid"}])
    secret = new_secret()
    hook = Webhook(org_id=actor.org_id, uid=secrets.token_urlsafe(12), name=(name or kind)[:200], kind=kind,
                   secret_encrypted=box.encrypt(secret), secret_prefix=secret[:10], default_service=default_service,
                   default_severity=default_severity, environment=environment, open_incidents=open_incidents,
                   auto_resolve=auto_resolve, created_by_user_id=actor.user_id, created_at=now)
    session.add(hook)
    session.flush()
    return hook, secret


def list_webhooks(*, session: Session, org_id: int) -> list[Webhook]:
    """Return the organization's webhooks, newest first."""
    return list(session.scalars(select(Webhook).where(Webhook.org_id == org_id).order_by(Webhook.id.desc())))


def get_or_404(*, session: Session, org_id: int, webhook_id: int) -> Webhook:
    """Return the organization's webhook or raise NotFound."""
    hook = session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.org_id == org_id))
    if hook is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return hook


def disable(*, session: Session, actor: Actor, webhook_id: int, now: datetime) -> Webhook:
    """Stop accepting deliveries on a webhook."""
    require(actor.role, Action.MANAGE)
    hook = get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    hook.disabled_at = hook.disabled_at or now
    session.flush()
    return hook


def rotate_secret(*, session: Session, actor: Actor, box: SecretBox, webhook_id: int) -> tuple[Webhook, str]:
    """Replace a webhook's secret; return the new one (shown this once)."""
    require(actor.role, Action.MANAGE)
    hook = get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    secret = new_secret()
    hook.secret_encrypted, hook.secret_prefix = box.encrypt(secret), secret[:10]
    session.flush()
    return hook, secret


def by_uid(*, session: Session, uid: str, kind: str) -> Webhook:
    """Return the active webhook behind a receiver URL, or raise NotFound (unknown, wrong kind or disabled)."""
    known = db.memo(session).setdefault("webhooks_by_uid", {})  # why: a batch of deliveries reads each webhook once
    if uid not in known:
        known[uid] = session.scalar(select(Webhook).where(Webhook.uid == uid))
    hook = known[uid]
    if hook is None or hook.kind != kind or hook.disabled_at is not None:
        raise NotFound("No active webhook at this URL.")
    return hook


def secret_of(hook: Webhook, box: SecretBox) -> str:
    """Return the webhook's secret in clear (for HMAC verification), or raise SecretUndecryptable."""
    try:
        return box.decrypt(hook.secret_encrypted)
    except ValueError:
        raise SecretUndecryptable("This webhook's secret cannot be decrypted with the configured keys; re-create the "
                                  "secret (rotate it) and give the new one to the sender.") from None


def check_secret(hook: Webhook, presented: str | None, box: SecretBox) -> None:
    """Raise Unauthenticated unless the presented secret is the webhook's."""
    if not presented or not same(presented, secret_of(hook, box)):
        raise Unauthenticated("Wrong or missing webhook secret (send it as 'Authorization: Bearer <secret>').")


def delivery_key(body: bytes, sender_id: str | None = None) -> str:
    """Return the replay key of a delivery: the sender's delivery id when it has one, else the body's SHA-256."""
    return f"id:{sender_id[:100]}" if sender_id else "sha256:" + hashlib.sha256(body).hexdigest()


def record_delivery(
    *, session: Session, hook: Webhook, key: str, now: datetime, event: str | None = None, items: int = 0,
    summary: str = "",
) -> bool:
    """Record a delivery once; return False when this exact delivery was already accepted (a replay)."""
    return record_deliveries(session=session, now=now, deliveries=[
        DeliveryRecord(hook=hook, key=key, event=event, items=items, summary=summary)])[0]


@dataclass
class DeliveryRecord:
    """A delivery to record once (record_deliveries)."""

    hook: Webhook
    key: str
    event: str | None = None
    items: int = 0
    summary: str = ""


def record_deliveries(*, session: Session, deliveries: list[DeliveryRecord], now: datetime) -> list[bool]:
    """Record deliveries once each, in one statement; False marks a replay (accepted before, by a concurrent
    transaction that committed, or earlier in this list)."""
    first: dict[tuple[int, str], int] = {}
    for i, d in enumerate(deliveries):
        first.setdefault((d.hook.id, d.key), i)
    stored: set[tuple[int, str]] = set()
    rows = [{"org_id": d.hook.org_id, "webhook_id": d.hook.id, "delivery_key": d.key, "received_at": now,
             "event": d.event[:64] if d.event else None, "items": d.items, "summary": d.summary[:2000]}
            for i, d in enumerate(deliveries) if first[(d.hook.id, d.key)] == i]
    # why: one statement (SQLAlchemy sends the rows as multi-row VALUES), no savepoint: a key already stored (or being
    # stored by a concurrent transaction, which PostgreSQL waits for) is skipped, and RETURNING names the ones stored
    statement = (db.dialect_insert(session, WebhookDelivery)
                 .on_conflict_do_nothing(index_elements=["webhook_id", "delivery_key"])
                 .returning(WebhookDelivery.webhook_id, WebhookDelivery.delivery_key))
    if rows:
        stored.update((hook_id, key) for hook_id, key in session.execute(statement, rows))
    return [first[(d.hook.id, d.key)] == i and (d.hook.id, d.key) in stored for i, d in enumerate(deliveries)]


def recent_deliveries(*, session: Session, org_id: int, webhook_id: int, limit: int = 50) -> list[WebhookDelivery]:
    """Return a webhook's latest accepted deliveries."""
    get_or_404(session=session, org_id=org_id, webhook_id=webhook_id)
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                                .order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 200)))))


def last_deliveries(*, session: Session, webhook_ids: list[int]) -> dict[int, datetime]:
    """Return when each of these webhooks last accepted a delivery (webhooks without one are absent)."""
    if not webhook_ids:
        return {}
    rows = session.execute(select(WebhookDelivery.webhook_id, func.max(WebhookDelivery.received_at))
                           .where(WebhookDelivery.webhook_id.in_(webhook_ids)).group_by(WebhookDelivery.webhook_id))
    return dict(rows.all())
