"""Webhook (integration) endpoints of the JSON API: create (secret shown once), list, rotate, disable, deliveries, alerts."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from blametrail.alerts import service as alerts
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath, IdQuery
from blametrail.web.presenters import alert_read, delivery_read, public_base, webhook_read
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookRead, WebhookWithSecret

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


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


@router.post("/webhooks", status_code=201, response_model=WebhookWithSecret)
def create_webhook(request: Request, data: WebhookCreate, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    hook, secret = webhooks.create(session=session, actor=actor, box=rt.secret_box, now=now, **data.model_dump())
    return {**webhook_read(hook, public_base(request, rt.settings)[0]), "secret": secret}


@router.get("/webhooks", response_model=list[WebhookRead])
def list_webhooks(request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    hooks = webhooks.list_webhooks(session=session, org_id=actor.org_id)
    last = webhooks.last_deliveries(session=session, webhook_ids=[h.id for h in hooks])
    return [webhook_read(h, public_base(request, rt.settings)[0], last.get(h.id)) for h in hooks]


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead)
def get_webhook(request: Request, webhook_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    hook = webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    return webhook_read(hook, public_base(request, rt.settings)[0], webhooks.last_deliveries(session=session, webhook_ids=[hook.id]).get(hook.id))


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=WebhookWithSecret)
def rotate_secret(request: Request, webhook_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    hook, secret = webhooks.rotate_secret(session=session, actor=actor, box=rt.secret_box, webhook_id=webhook_id)
    return {**webhook_read(hook, public_base(request, rt.settings)[0]), "secret": secret}


@router.delete("/webhooks/{webhook_id}", response_model=WebhookRead)
def disable_webhook(request: Request, webhook_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    hook = webhooks.disable(session=session, actor=actor, webhook_id=webhook_id, now=now)
    return webhook_read(hook, public_base(request, rt.settings)[0])


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryRead])
def list_deliveries(webhook_id: IdPath, actor: ApiActor, session: SessionDep, limit: int = Query(50, ge=1, le=200)):
    rows = webhooks.recent_deliveries(session=session, org_id=actor.org_id, webhook_id=webhook_id, limit=limit)
    return [delivery_read(d) for d in rows]


@router.get("/alerts", response_model=list[AlertRead], tags=["alerts"])
def list_alerts(
    actor: ApiActor, session: SessionDep, status: Literal["firing", "resolved"] | None = None,
    incident_id: IdQuery = None, webhook_id: IdQuery = None, limit: int = Query(50, ge=1, le=200),
):
    return [alert_read(a) for a in alerts.list_alerts(session=session, org_id=actor.org_id, status=status,
                                                          incident_id=incident_id, webhook_id=webhook_id, limit=limit)]
