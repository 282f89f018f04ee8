"""Webhook (integration) endpoints of the JSON API: create (secret shown once), list, rotate, disable, deliveries, alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from blametrail.alerts import service as alerts
from blametrail.alerts import webhooks
from blametrail.alerts.models import Webhook, WebhookDelivery
from blametrail.clock import iso
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath, IdQuery

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
Kind = Literal["alertmanager", "grafana", "generic_alert", "github", "generic_deploy"]
Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Kind
    name: str = Field(..., min_length=1, max_length=200)
    default_service: str | None = Field(None, min_length=1, max_length=120,
                                        description="Service for alerts whose labels name none.")
    default_severity: Severity = "SEV-3"
    environment: str | None = Field(None, min_length=1, max_length=64,
                                    description="Deploy webhooks: accept only this environment (none = any).")
    open_incidents: bool = Field(True, description="A firing alert with no open incident of its service opens one.")
    auto_resolve: bool = Field(False, description="Resolve the incident when all its alerts have resolved.")


class WebhookRead(BaseModel):
    id: int
    kind: str
    name: str
    url: str
    secret_prefix: str
    default_service: str | None
    default_severity: str
    environment: str | None
    open_incidents: bool
    auto_resolve: bool
    active: bool
    created_at: str
    disabled_at: str | None
    last_delivery_at: str | None = None


class WebhookWithSecret(WebhookRead):
    secret: str = Field(..., description="Shown only in this response; store it in the sender's configuration.")


class DeliveryRead(BaseModel):
    id: int
    delivery_key: str
    received_at: str
    event: str | None
    items: int
    summary: str


class AlertRead(BaseModel):
    id: int
    webhook_id: int
    fingerprint: str
    status: str
    name: str
    service: str | None
    severity: str | None
    summary: str
    labels: dict
    annotations: dict
    url: str | None
    starts_at: str
    ends_at: str | None
    incident_id: int | None
    created_at: str
    updated_at: str


def webhook_read(hook: Webhook, public_url: str, last_delivery_at: datetime | None = None) -> dict:
    """Return the API shape of a webhook (never its secret)."""
    return {"id": hook.id, "kind": hook.kind, "name": hook.name, "url": webhooks.url_for(hook, public_url),
            "secret_prefix": hook.secret_prefix, "default_service": hook.default_service,
            "default_severity": hook.default_severity, "environment": hook.environment,
            "open_incidents": hook.open_incidents, "auto_resolve": hook.auto_resolve,
            "active": hook.disabled_at is None, "created_at": iso(hook.created_at), "disabled_at": iso(hook.disabled_at),
            "last_delivery_at": iso(last_delivery_at)}


def _last_deliveries(session, ids: list[int]) -> dict[int, datetime]:
    if not ids:
        return {}
    rows = session.execute(select(WebhookDelivery.webhook_id, func.max(WebhookDelivery.received_at))
                           .where(WebhookDelivery.webhook_id.in_(ids)).group_by(WebhookDelivery.webhook_id))
    return dict(rows.all())


@router.post("/webhooks", status_code=201, response_model=WebhookWithSecret)
def create_webhook(data: WebhookCreate, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    hook, secret = webhooks.create(session=session, actor=actor, box=rt.secret_box, now=now, **data.model_dump())
    return {**webhook_read(hook, rt.settings.public_url), "secret": secret}


@router.get("/webhooks", response_model=list[WebhookRead])
def list_webhooks(actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    hooks = webhooks.list_webhooks(session=session, org_id=actor.org_id)
    last = _last_deliveries(session, [h.id for h in hooks])
    return [webhook_read(h, rt.settings.public_url, last.get(h.id)) for h in hooks]


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead)
def get_webhook(webhook_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    hook = webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    return webhook_read(hook, rt.settings.public_url, _last_deliveries(session, [hook.id]).get(hook.id))


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=WebhookWithSecret)
def rotate_secret(webhook_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    hook, secret = webhooks.rotate_secret(session=session, actor=actor, box=rt.secret_box, webhook_id=webhook_id)
    return {**webhook_read(hook, rt.settings.public_url), "secret": secret}


@router.delete("/webhooks/{webhook_id}", response_model=WebhookRead)
def disable_webhook(webhook_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    hook = webhooks.disable(session=session, actor=actor, webhook_id=webhook_id, now=now)
    return webhook_read(hook, rt.settings.public_url)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryRead])
def list_deliveries(webhook_id: IdPath, actor: ApiActor, session: SessionDep, limit: int = Query(50, ge=1, le=200)):
    rows = webhooks.recent_deliveries(session=session, org_id=actor.org_id, webhook_id=webhook_id, limit=limit)
    return [{"id": d.id, "delivery_key": d.delivery_key, "received_at": iso(d.received_at), "event": d.event,
             "items": d.items, "summary": d.summary} for d in rows]


@router.get("/alerts", response_model=list[AlertRead], tags=["alerts"])
def list_alerts(
    actor: ApiActor, session: SessionDep, status: Literal["firing", "resolved"] | None = None,
    incident_id: IdQuery = None, webhook_id: IdQuery = None, limit: int = Query(50, ge=1, le=200),
):
    return [alerts.to_read(a) for a in alerts.list_alerts(session=session, org_id=actor.org_id, status=status,
                                                          incident_id=incident_id, webhook_id=webhook_id, limit=limit)]
