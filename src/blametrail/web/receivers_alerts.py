"""Alert webhook receivers: Alertmanager, Grafana and generic JSON deliveries, authenticated by each webhook's secret.

Order of checks (each rejection stores nothing: the delivery row and its alerts commit together, or not at all):
size (413) → webhook exists, right kind, enabled (404) → secret (401) → JSON (400) → shape (422) → replay (200,
"duplicate") → ingest (200 with counts). Deliveries that arrive together share one transaction
(web/alert_batches.py); each is still checked and answered on its own, after that transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from blametrail.alerts import parsers
from blametrail.alerts import service as alerts
from blametrail.web import alert_batches
from blametrail.web.receivers_common import (
    DELIVERY_HEADER,
    JSON_BODY,
    capped_body,
    json_body,
    presented_secret,
)
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.models import Webhook

router = APIRouter(tags=["webhooks"])

Body = Annotated[bytes, Depends(capped_body)]


@dataclass
class _Checked:
    hook: Webhook
    batch: list[parsers.NormalizedAlert]
    key: str
    event: str


def check(*, kind: str, uid: str, body: bytes, secret: str | None, delivery_id: str | None, session, box) -> _Checked:
    """Authenticate and parse one delivery of an alert webhook (reads only; raises the delivery's problem)."""
    hook = webhooks.by_uid(session=session, uid=uid, kind=kind)
    webhooks.check_secret(hook, secret, box)
    payload = json_body(body, error=parsers.MalformedPayload)
    batch = parsers.PARSERS[kind](payload, default_service=hook.default_service, default_severity=hook.default_severity)
    statuses = {a.status for a in batch}
    event = statuses.pop() if len(statuses) == 1 else ("mixed" if statuses else "empty")
    return _Checked(hook=hook, batch=batch, key=webhooks.delivery_key(body, delivery_id), event=event)


DUPLICATE = {"status": "duplicate", "detail": "This delivery was already accepted; nothing new was stored."}


def write_all(session, checked: list[_Checked], now) -> list[dict]:
    """Record checked deliveries (each once: a replay stores nothing) and ingest their alerts; return each answer."""
    recorded = webhooks.record_deliveries(session=session, now=now, deliveries=[
        webhooks.DeliveryRecord(hook=c.hook, key=c.key, event=c.event, items=len(c.batch),
                                summary=alerts.describe(c.batch)) for c in checked])
    answers: list[dict] = [dict(DUPLICATE) for _ in checked]
    by_hook: dict[int, list[int]] = {}
    for i, (c, new) in enumerate(zip(checked, recorded, strict=True)):
        if new:
            by_hook.setdefault(c.hook.id, []).append(i)
    for indexes in by_hook.values():
        summaries = alerts.ingest_many(session=session, hook=checked[indexes[0]].hook, now=now,
                                       deliveries=[checked[i].batch for i in indexes])
        for i, summary in zip(indexes, summaries, strict=True):
            answers[i] = {"status": "accepted", **summary.as_dict()}
    return answers


async def receive(*, kind: str, uid: str, body: bytes, request: Request) -> dict:
    """Check, record and ingest one delivery in the next group-committed batch (web/alert_batches.py)."""
    box = request.app.state.runtime.secret_box
    secret, delivery_id = presented_secret(request), request.headers.get(DELIVERY_HEADER)
    return await alert_batches.submit(
        request,
        lambda session: check(kind=kind, uid=uid, body=body, secret=secret, delivery_id=delivery_id, session=session,
                              box=box),
        write_all)


_DOC = ("Authenticate with `Authorization: Bearer <secret>` (or `X-BlameTrail-Secret`, or Basic auth with the secret as "
        "password). Errors are problem+json: 413 too large, 404 unknown webhook, 401 wrong secret, 400 malformed JSON, "
        "422 invalid shape. A replayed delivery answers 200 with status `duplicate` and stores nothing.")


@router.post("/webhooks/alertmanager/{uid}", summary="Receive a Prometheus Alertmanager delivery (payload version 4)",
             description=_DOC, openapi_extra=JSON_BODY)
async def alertmanager(uid: str, body: Body, request: Request):
    return await receive(kind="alertmanager", uid=uid, body=body, request=request)


@router.post("/webhooks/grafana/{uid}", summary="Receive a Grafana alerting delivery", description=_DOC,
             openapi_extra=JSON_BODY)
async def grafana(uid: str, body: Body, request: Request):
    return await receive(kind="grafana", uid=uid, body=body, request=request)


@router.post("/webhooks/alerts/{uid}", summary="Receive a generic JSON alert delivery (docs/webhooks.md)",
             description=_DOC, openapi_extra=JSON_BODY)
async def generic(uid: str, body: Body, request: Request):
    return await receive(kind="generic_alert", uid=uid, body=body, request=request)
