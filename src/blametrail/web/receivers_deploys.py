"""Deploy receivers: GitHub (HMAC-signed deployment_status and push) and the generic deploy webhook.

Each delivery is read with a hard size cap, authenticated, parsed and recorded in the request's one
transaction: any rejection stores nothing, and a replay (same delivery id, or for the generic webhook the
same `X-BlameTrail-Delivery` or body) or a deploy whose external id is already recorded stores nothing new.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from blametrail.deploys import parsers
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import DeployRead
from blametrail.errors import Unauthenticated, ValidationFailed
from blametrail.web import presenters
from blametrail.web.deps import NowDep, RuntimeDep, SessionDep
from blametrail.web.receivers_common import JSON_BODY, capped_body, json_body, presented_secret
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.models import Webhook

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class ReceiverResult(BaseModel):
    status: Literal["recorded", "duplicate", "ignored", "ok"]
    detail: str
    deploy: DeployRead | None = None


BodyDep = Annotated[bytes, Depends(capped_body)]


def verify_github_signature(body: bytes, header: str | None, secret: str) -> None:
    """Raise Unauthenticated unless `X-Hub-Signature-256` is the HMAC-SHA256 of the body under the secret."""
    if not header:
        raise Unauthenticated("Missing X-Hub-Signature-256 header: set the webhook's secret in GitHub.")
    scheme, _, presented = header.strip().partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if scheme != "sha256" or not hmac.compare_digest(presented.lower().encode(), expected.encode()):
        raise Unauthenticated("X-Hub-Signature-256 signature mismatch: check the webhook's secret.")


def _object(payload: object) -> dict:
    """Return the payload if it is a JSON object, else refuse it with 422."""
    if not isinstance(payload, dict):
        raise ValidationFailed("The body must be a JSON object.", [{"loc": ["body"], "msg": "not an object"}])
    return payload


def _accept(*, session: Session, hook: Webhook, key: str, event: str | None, parsed: parsers.Parsed, source: str,
            now, response: Response) -> dict:
    """Record the delivery once and the deploy it carries once; say what happened."""
    data = parsed.deploy
    existing = None
    if parsed.status == "deploy" and data.external_id:
        existing = deploys.find_external(session=session, org_id=hook.org_id, source=source,
                                         external_id=data.external_id)
    if parsed.status == "deploy":
        summary = (f"deploy {data.external_id} already recorded" if existing else
                   f"deploy of {data.service} {data.version} to {data.environment} ({len(data.commits)} commits)")
    else:
        summary = parsed.reason
    if not webhooks.record_delivery(session=session, hook=hook, key=key, now=now, event=event,
                                    items=int(parsed.status == "deploy" and existing is None), summary=summary):
        response.status_code = 200
        return {"status": "duplicate", "detail": "This delivery was already accepted; nothing new was recorded."}
    if parsed.status == "ok":
        response.status_code = 200
        return {"status": "ok", "detail": parsed.reason or "ok"}
    if parsed.status == "ignored":
        response.status_code = 202
        return {"status": "ignored", "detail": parsed.reason}
    deploy = None if existing else deploys.record_from_webhook(session=session, org_id=hook.org_id, data=data,
                                                                source=source, now=now)
    if deploy is None:
        response.status_code = 200
        return {"status": "duplicate", "detail": f"A deploy with external id {data.external_id!r} is already recorded."}
    response.status_code = 201
    return {"status": "recorded", "detail": summary, "deploy": presenters.deploy_read(deploy)}


@router.post("/github/{uid}", response_model=ReceiverResult, response_model_exclude_none=True,
             openapi_extra=JSON_BODY)
def receive_github(uid: str, request: Request, response: Response, body: BodyDep, session: SessionDep,
                   rt: RuntimeDep, now: NowDep):
    """Receive a GitHub webhook delivery (deployment_status and push record deploys; ping answers ok)."""
    hook = webhooks.by_uid(session=session, uid=uid, kind="github")
    verify_github_signature(body, request.headers.get("x-hub-signature-256"), webhooks.secret_of(hook, rt.secret_box))
    event = request.headers.get("x-github-event")
    if not event:
        raise parsers.MalformedPayload("Missing X-GitHub-Event header.")
    payload = _object(json_body(body, content_type=request.headers.get("content-type"),
                                error=parsers.MalformedPayload))
    parsed = parsers.github_event(event, payload, environment=hook.environment, default_service=hook.default_service)
    key = webhooks.delivery_key(body, request.headers.get("x-github-delivery"))
    return _accept(session=session, hook=hook, key=key, event=event, parsed=parsed, source="github", now=now,
                   response=response)


@router.post("/deploys/{uid}", response_model=ReceiverResult, response_model_exclude_none=True,
             openapi_extra=JSON_BODY)
def receive_generic(uid: str, request: Request, response: Response, body: BodyDep, session: SessionDep,
                    rt: RuntimeDep, now: NowDep):
    """Receive a generic deploy: the POST /api/v1/deploys JSON, secret as Bearer or X-BlameTrail-Secret."""
    hook = webhooks.by_uid(session=session, uid=uid, kind="generic_deploy")
    webhooks.check_secret(hook, presented_secret(request), rt.secret_box)
    payload = _object(json_body(body, error=parsers.MalformedPayload))
    parsed = parsers.generic_deploy(payload, environment=hook.environment, default_service=hook.default_service)
    key = webhooks.delivery_key(body, request.headers.get("x-blametrail-delivery"))
    return _accept(session=session, hook=hook, key=key, event="deploy", parsed=parsed, source="webhook", now=now,
                   response=response)
