"""Paging tools' webhooks to us: PagerDuty (v3, X-PagerDuty-Signature) and Opsgenie (a custom token header).

Each call is verified against the organization's integration named by the URL (401 otherwise, nothing stored),
handled once per delivery id (a retry or replay is acknowledged, not repeated), and applied by vendors/paging.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from blametrail.errors import Unauthenticated
from blametrail.vendors import opsgenie, pagerduty, paging
from blametrail.vendors import service as vendors
from blametrail.web.deps import NowDep, RuntimeDep, SessionDep
from blametrail.web.receivers_common import BadRequest, capped_body, json_body

router = APIRouter(prefix="/inbound", tags=["integrations"])
BodyDep = Annotated[bytes, Depends(capped_body)]


def _secret(session, rt, kind: str, uid: str, name: str):
    row = vendors.by_inbound(session=session, kind=kind, uid=uid)
    if row is None:
        raise Unauthenticated("Unknown webhook URL: copy it again from the integration's page.")
    try:
        secret = vendors.secrets_of(row, rt.secret_box).get(name)
    except ValueError:
        secret = None
    if not secret:
        raise Unauthenticated("The integration's secret cannot be read: enter it again on its page.")
    return row, secret


def _payload(body: bytes, request: Request) -> dict:
    payload = json_body(body, content_type=request.headers.get("content-type"))
    if not isinstance(payload, dict):
        raise BadRequest("The payload must be a JSON object.")
    return payload


def _handle(*, session, row, kind: str, label: str, delivery: str, event, now) -> dict:
    if delivery and not vendors.first_time(session=session, org_id=row.org_id, kind=kind, event_id=delivery[:200],
                                           now=now):
        return {"ok": True, "duplicate": True}
    vendors.record_check(row, ok=True, error=None, now=now)
    if event is None or not event.key:
        return {"ok": True, "ignored": "not an incident event BlameTrail follows"}
    return {"ok": True, **paging.apply(session=session, org_id=row.org_id, vendor=kind, label=label, event=event,
                                       now=now)}


@router.post("/pagerduty/{inbound_uid}/webhook")
def pagerduty_webhook(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep,
                      now: NowDep):
    row, secret = _secret(session, rt, "pagerduty", inbound_uid, "signing_secret")
    if not pagerduty.verify(body, request.headers.get("x-pagerduty-signature"), secret):
        raise Unauthenticated("X-PagerDuty-Signature does not match: check the webhook signing secret.")
    delivery, event = pagerduty.parse(_payload(body, request), now)
    return _handle(session=session, row=row, kind="pagerduty", label="PagerDuty", delivery=delivery, event=event,
                   now=now)


@router.post("/opsgenie/{inbound_uid}/webhook")
def opsgenie_webhook(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep,
                     now: NowDep):
    row, secret = _secret(session, rt, "opsgenie", inbound_uid, "inbound_secret")
    if not opsgenie.verify(request.headers.get(opsgenie.TOKEN_HEADER), secret):
        raise Unauthenticated("X-BlameTrail-Token is missing or wrong: add it as a custom header in Opsgenie's "
                              "Webhook integration.")
    delivery, event = opsgenie.parse(_payload(body, request), now)
    return _handle(session=session, row=row, kind="opsgenie", label="Opsgenie", delivery=delivery, event=event,
                   now=now)
