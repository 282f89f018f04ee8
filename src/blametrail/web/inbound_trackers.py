"""Trackers' webhooks to us: GitHub Issues, Linear and Jira tell us an issue changed; the linked action item follows.

Each verifies the tracker's own signature on the raw body with the integration's webhook secret — GitHub
`X-Hub-Signature-256: sha256=<hex>`, Linear `Linear-Signature: <hex>` (and its `webhookTimestamp` within a minute),
Jira `X-Hub-Signature: sha256=<hex>` — and answers 401 otherwise, storing nothing. A delivery is handled once per
delivery id (`X-GitHub-Delivery`, `Linear-Delivery`, `X-Atlassian-Webhook-Identifier`); events about other things
are acknowledged and ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from blametrail.errors import Unauthenticated
from blametrail.vendors import github_issues, jira, linear, tracker_sync
from blametrail.vendors import service as vendors
from blametrail.vendors.models import VendorIntegration
from blametrail.web.deps import NowDep, RuntimeDep, SessionDep
from blametrail.web.receivers_common import BadRequest, capped_body, json_body

router = APIRouter(prefix="/inbound", tags=["integrations"])
BodyDep = Annotated[bytes, Depends(capped_body)]


def _integration(session: Session, rt, kind: str, uid: str) -> tuple[VendorIntegration, str]:
    row = vendors.by_inbound(session=session, kind=kind, uid=uid)
    if row is None:
        raise Unauthenticated("Unknown webhook URL: copy it again from the integration's page.")
    try:
        secret = vendors.secrets_of(row, rt.secret_box).get("webhook_secret")
    except ValueError:
        secret = None
    if not secret:
        raise Unauthenticated("The integration has no webhook secret: set one on its page and on the webhook.")
    return row, secret


def _handle(*, session: Session, row: VendorIntegration, kind: str, delivery: str | None,
            parsed: tuple[str, str] | None, now: datetime) -> dict:
    if delivery and not vendors.first_time(session=session, org_id=row.org_id, kind=kind, event_id=delivery[:200],
                                           now=now):
        return {"ok": True, "duplicate": True}
    if parsed is None:
        return {"ok": True, "ignored": "not an issue status change"}
    key, status = parsed
    item = tracker_sync.apply_status(session=session, org_id=row.org_id, tracker=kind, key=key, tracker_status=status,
                                     now=now)
    vendors.record_check(row, ok=True, error=None, now=now)
    if item is None:
        return {"ok": True, "ignored": f"{key} is not linked to an action item"}
    return {"ok": True, "action_item_id": item.id, "status": item.status}


def _object(body: bytes, request: Request) -> dict:
    payload = json_body(body, content_type=request.headers.get("content-type"))
    if not isinstance(payload, dict):
        raise BadRequest("The payload must be a JSON object.")
    return payload


@router.post("/github_issues/{inbound_uid}/webhook")
def github_webhook(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep,
                   now: NowDep):
    row, secret = _integration(session, rt, "github_issues", inbound_uid)
    if not github_issues.verify(body, request.headers.get("x-hub-signature-256"), secret):
        raise Unauthenticated("X-Hub-Signature-256 does not match: check the webhook secret.")
    event = request.headers.get("x-github-event")
    if event == "ping":
        return {"ok": True, "ping": True}
    parsed = github_issues.parse_event(event, _object(body, request))
    return _handle(session=session, row=row, kind="github_issues", delivery=request.headers.get("x-github-delivery"),
                   parsed=parsed, now=now)


@router.post("/linear/{inbound_uid}/webhook")
def linear_webhook(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep,
                   now: NowDep):
    row, secret = _integration(session, rt, "linear", inbound_uid)
    if not linear.verify(body, request.headers.get("linear-signature"), secret):
        raise Unauthenticated("Linear-Signature does not match: check the webhook's signing secret.")
    payload = _object(body, request)
    stamp = payload.get("webhookTimestamp")
    if not isinstance(stamp, int) or abs(now.timestamp() * 1000 - stamp) > linear.MAX_AGE_MS:
        raise Unauthenticated("webhookTimestamp is more than a minute away (a replay?).")
    return _handle(session=session, row=row, kind="linear", delivery=request.headers.get("linear-delivery"),
                   parsed=linear.parse_event(payload), now=now)


@router.post("/jira/{inbound_uid}/webhook")
def jira_webhook(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep,
                 now: NowDep):
    row, secret = _integration(session, rt, "jira", inbound_uid)
    if not jira.verify(body, request.headers.get("x-hub-signature"), secret):
        raise Unauthenticated("X-Hub-Signature does not match: check the webhook's secret.")
    return _handle(session=session, row=row, kind="jira",
                   delivery=request.headers.get("x-atlassian-webhook-identifier"),
                   parsed=jira.parse_event(_object(body, request)), now=now)
