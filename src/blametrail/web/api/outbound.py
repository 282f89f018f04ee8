"""Outbound webhooks in the JSON API: endpoints (owner/admin write, everyone reads), the delivery log, redelivery,
a Test that sends a signed `ping`. The secret is returned once, on create and on rotate."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail import db, netguard
from blametrail.clock import iso
from blametrail.jobs.outbound import send_once
from blametrail.orgs.permissions import Action, require
from blametrail.outbound import service as outbound
from blametrail.outbound.models import EVENTS, OutboundDelivery, OutboundEndpoint
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/outbound-webhooks", tags=["outbound webhooks"])


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000)
    description: str = Field("", max_length=200)
    events: list[str] = Field(description="any of " + ", ".join(EVENTS), max_length=len(EVENTS))


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2000)
    description: str | None = Field(None, max_length=200)
    events: list[str] | None = Field(None, max_length=len(EVENTS))
    enabled: bool | None = None


def endpoint_read(row: OutboundEndpoint) -> dict:
    return {"id": row.id, "url": row.url, "description": row.description, "events": list(row.events or []),
            "enabled": row.enabled, "disabled_reason": row.disabled_reason, "failure_streak": row.failure_streak,
            "created_by": row.created_by, "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def delivery_read(d: OutboundDelivery) -> dict:
    return {"id": d.id, "msg_id": d.msg_id, "event_type": d.event_type, "status": d.status, "attempts": d.attempts,
            "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
            "last_attempt_at": iso(d.last_attempt_at), "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": iso(d.created_at), "delivered_at": iso(d.delivered_at),
            "payload": d.payload}


@router.get("")
def list_endpoints(actor: ApiActor, session: SessionDep):
    require(actor.role, Action.READ)
    return {"items": [endpoint_read(r) for r in outbound.list_endpoints(session=session, org_id=actor.org_id)],
            "events": list(EVENTS)}


@router.post("", status_code=201)
def create_endpoint(data: EndpointCreate, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    """Add an endpoint; the answer carries its signing secret (whsec_…) this once."""
    row, secret = outbound.create(session=session, actor=actor, url=data.url, description=data.description,
                                  events=data.events, box=rt.secret_box, policy=netguard.policy_from(rt.settings),
                                  now=now)
    return {**endpoint_read(row), "secret": secret}


@router.get("/{endpoint_id}")
def get_endpoint(endpoint_id: IdPath, actor: ApiActor, session: SessionDep):
    return endpoint_read(outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id))


@router.patch("/{endpoint_id}")
def patch_endpoint(endpoint_id: IdPath, data: EndpointPatch, actor: ApiActor, session: SessionDep, rt: RuntimeDep,
                   now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    return endpoint_read(outbound.update(session=session, actor=actor, row=row, policy=netguard.policy_from(rt.settings),
                                         now=now, url=data.url, description=data.description, events=data.events,
                                         enabled=data.enabled))


@router.delete("/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: IdPath, actor: ApiActor, session: SessionDep):
    outbound.delete(session=session, actor=actor,
                    row=outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id))
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret")
def rotate_secret(endpoint_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    return {**endpoint_read(row), "secret": outbound.rotate_secret(session=session, actor=actor, row=row,
                                                                   box=rt.secret_box, now=now)}


@router.get("/{endpoint_id}/deliveries")
def deliveries(endpoint_id: IdPath, actor: ApiActor, session: SessionDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    return {"items": [delivery_read(d) for d in outbound.list_deliveries(session=session, row=row)]}


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(endpoint_id: IdPath, delivery_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    delivery = outbound.get_delivery_or_404(session=session, row=row, delivery_id=delivery_id)
    return delivery_read(outbound.redeliver(session=session, actor=actor, delivery=delivery, now=now))


@router.post("/{endpoint_id}/test")
def test_endpoint(endpoint_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    """Send a signed `ping` now and say what the endpoint answered."""
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    delivery = outbound.ping(session=session, actor=actor, row=row, now=now)
    delivery_id = delivery.id
    db.commit(session)  # why: the send reads the delivery in its own transactions, as the job does
    send_once(factory=rt.factory, delivery_id=delivery_id, box=rt.secret_box, policy=netguard.policy_from(rt.settings),
              timeout=rt.settings.vendor_timeout_seconds, clock=rt.clock.now)
    session.expire_all()
    sent = session.get(OutboundDelivery, delivery_id)
    return {"ok": sent.status == "succeeded", "status_code": sent.last_status_code, "detail": sent.last_error
            or "The endpoint answered 2xx.", "delivery": delivery_read(sent)}
