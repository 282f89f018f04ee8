"""Alert webhook receivers: Alertmanager, Grafana and generic JSON deliveries, authenticated by each webhook's secret.

Order of checks (each rejection stores nothing: the delivery row and its alerts commit together, or not at all):
size (413) → webhook exists, right kind, enabled (404) → secret (401) → JSON (400) → shape (422) → replay (200,
"duplicate") → ingest (200 with counts).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from blametrail.alerts import parsers
from blametrail.alerts import service as alerts
from blametrail.web.deps import NowDep, RuntimeDep, SessionDep
from blametrail.web.receivers_common import (
    DELIVERY_HEADER,
    JSON_BODY,
    capped_body,
    json_body,
    presented_secret,
)
from blametrail.webhooks import service as webhooks

router = APIRouter(tags=["webhooks"])
async def sqlite_write_gate(request: Request) -> AsyncIterator[None]:
    """On SQLite, let one delivery transaction run at a time; the others wait here, on the event loop."""
    # why: every SQLite transaction here is BEGIN IMMEDIATE; concurrent deliveries otherwise queue in SQLite's busy
    # handler, whose back-off sleeps (up to 100 ms) leave the lock idle: measured p99 of seconds at 16 senders.
    if request.app.state.runtime.engine.dialect.name != "sqlite":
        yield
        return
    gate = getattr(request.app.state, "alert_write_gate", None)
    if gate is None:
        gate = request.app.state.alert_write_gate = asyncio.Semaphore(1)
    async with gate:
        yield


Body = Annotated[bytes, Depends(capped_body)]
Gate = Annotated[None, Depends(sqlite_write_gate, scope="function")]  # entered before, left after the session


def receive(*, kind: str, uid: str, body: bytes, request: Request, session, rt, now) -> dict:
    """Authenticate, parse and ingest one delivery of an alert webhook."""
    hook = webhooks.by_uid(session=session, uid=uid, kind=kind)
    webhooks.check_secret(hook, presented_secret(request), rt.secret_box)
    payload = json_body(body, error=parsers.MalformedPayload)
    batch = parsers.PARSERS[kind](payload, default_service=hook.default_service, default_severity=hook.default_severity)
    key = webhooks.delivery_key(body, request.headers.get(DELIVERY_HEADER))
    statuses = {a.status for a in batch}
    event = statuses.pop() if len(statuses) == 1 else ("mixed" if statuses else "empty")
    if not webhooks.record_delivery(session=session, hook=hook, key=key, now=now, event=event, items=len(batch),
                                    summary=alerts.describe(batch)):
        return {"status": "duplicate", "detail": "This delivery was already accepted; nothing new was stored."}
    result = alerts.ingest(session=session, hook=hook, alerts=batch, now=now)
    return {"status": "accepted", **result.as_dict()}


_DOC = ("Authenticate with `Authorization: Bearer <secret>` (or `X-BlameTrail-Secret`, or Basic auth with the secret as "
        "password). Errors are problem+json: 413 too large, 404 unknown webhook, 401 wrong secret, 400 malformed JSON, "
        "422 invalid shape. A replayed delivery answers 200 with status `duplicate` and stores nothing.")


@router.post("/webhooks/alertmanager/{uid}", summary="Receive a Prometheus Alertmanager delivery (payload version 4)",
             description=_DOC, openapi_extra=JSON_BODY)
def alertmanager(uid: str, body: Body, _gate: Gate, request: Request, session: SessionDep, rt: RuntimeDep, now: NowDep):
    return receive(kind="alertmanager", uid=uid, body=body, request=request, session=session, rt=rt, now=now)


@router.post("/webhooks/grafana/{uid}", summary="Receive a Grafana alerting delivery", description=_DOC,
             openapi_extra=JSON_BODY)
def grafana(uid: str, body: Body, _gate: Gate, request: Request, session: SessionDep, rt: RuntimeDep, now: NowDep):
    return receive(kind="grafana", uid=uid, body=body, request=request, session=session, rt=rt, now=now)


@router.post("/webhooks/alerts/{uid}", summary="Receive a generic JSON alert delivery (docs/webhooks.md)",
             description=_DOC, openapi_extra=JSON_BODY)
def generic(uid: str, body: Body, _gate: Gate, request: Request, session: SessionDep, rt: RuntimeDep, now: NowDep):
    return receive(kind="generic_alert", uid=uid, body=body, request=request, session=session, rt=rt, now=now)
