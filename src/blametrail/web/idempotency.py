"""Idempotency-Key on API POSTs, the HTTP side: hash the keyed body, pick the route's replay rule, store, replay.

The keys themselves (reservation in the request's transaction, retries, storage, purge) live in
orgs/idempotency.py. Here:
- the middleware buffers the body of a keyed `POST /api/...`, hashes it and leaves a `Pending` in the scope state;
- `api_actor` (every API route depends on it) calls `reserve_for_route`, which gives the `Pending` its route's rule
  (REPLAY_ACTIONS, SECRET_ONCE_ROUTES) and reserves the key in the request's own transaction;
- after a committed request produced a response below 500, the middleware stores it before its last byte leaves.
"""

from __future__ import annotations

import hashlib
import logging
import re
from functools import partial

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from blametrail.orgs.idempotency import Pending, Replay, reserve, store_response, ttl_of
from blametrail.orgs.permissions import Action
from blametrail.orgs.service import Actor
from blametrail.web.dbgate import db_gate
from blametrail.web.errors import problem

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
API_PREFIX = "/api/"
STATE_KEY = "idempotency"
KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")
MAX_BODY_BYTES = 1_048_576  # a keyed request's body is buffered to hash it
MAX_STORED_BYTES = 1_048_576  # a bigger response is not stored (a retry is told it was processed)
STORED_HEADERS = (b"content-type", b"location")
PATH_MAX = 2048

# The Action each API POST's own check requires (the role table, as tests/security/routes_support.py states it).
# A retry is answered only when the caller's current role may still perform it, with the route's 403 otherwise; a
# route missing here never replays (409). tests/web/test_idempotency.py fails on a POST route missing here.
REPLAY_ACTIONS: dict[str, Action] = {
    "/api/v1/incidents": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/updates": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/resolve": Action.WRITE_INCIDENTS,
    "/api/v1/deploys": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/postmortem": Action.POSTMORTEM_WRITE,
    "/api/v1/incidents/{incident_id}/postmortem/regenerate": Action.POSTMORTEM_WRITE,
    "/api/v1/incidents/{incident_id}/postmortem/publish": Action.PUBLISH,
    "/api/v1/monitors": Action.MANAGE,
    "/api/v1/webhooks": Action.MANAGE,
    "/api/v1/webhooks/{webhook_id}/rotate-secret": Action.MANAGE,
    "/api/v1/connections": Action.MANAGE,
    "/api/v1/connections/{connection_id}/test": Action.MANAGE,
    "/api/v1/org/members": Action.MANAGE,
    "/api/v1/org/ai/test": Action.MANAGE,
    "/api/v1/integrations/{kind}/test": Action.MANAGE,
    "/api/v1/incidents/{incident_id}/postmortem/pages": Action.PUBLISH,
    "/api/v1/incidents/{incident_id}/action-items": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/action-items/from-draft": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/postmortem/customer": Action.POSTMORTEM_WRITE,
    "/api/v1/incidents/{incident_id}/postmortem/customer/publish": Action.PUBLISH,
    "/api/v1/incidents/{incident_id}/postmortem/customer/withdraw": Action.PUBLISH,
    "/api/v1/org/tokens": Action.READ,  # one's own token
    "/api/v1/incidents/{incident_id}/slack-channel": Action.WRITE_INCIDENTS,
    "/api/v1/action-items/{item_id}/external": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/postmortem/comments": Action.WRITE_INCIDENTS,
    "/api/v1/incidents/{incident_id}/postmortem/reviews": Action.POSTMORTEM_WRITE,
    "/api/v1/incidents/{incident_id}/postmortem/reviews/decision": Action.POSTMORTEM_WRITE,
    "/api/v1/outbound-webhooks": Action.MANAGE,
    "/api/v1/outbound-webhooks/{endpoint_id}/rotate-secret": Action.MANAGE,
    "/api/v1/outbound-webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": Action.MANAGE,
    "/api/v1/outbound-webhooks/{endpoint_id}/test": Action.MANAGE,
}

# Routes whose response shows a secret once (webhook secrets, API tokens, invitation links): the key is kept without
# the body, and a retry gets 409 idempotency-secret-shown-once. Add every new route that returns a secret.
SECRET_ONCE_ROUTES: frozenset[str] = frozenset({
    "/api/v1/outbound-webhooks",
    "/api/v1/outbound-webhooks/{endpoint_id}/rotate-secret",
    "/api/v1/webhooks",
    "/api/v1/webhooks/{webhook_id}/rotate-secret",
    "/api/v1/org/tokens",
    "/api/v1/org/members",
})


def request_path(scope) -> str:
    """Return the path and query string of a request, as compared between retries."""
    query = scope.get("query_string", b"")
    path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
    return path[:PATH_MAX]


def reserve_for_route(request: Request, *, session: Session, actor: Actor, now) -> None:
    """Give the request's keyed POST (if any) its route's replay rule; reserve the key in the request's transaction."""
    pending = getattr(request.state, STATE_KEY, None)
    if pending is None:
        return
    route_path = getattr(request.scope.get("route"), "path", None)
    pending.action = REPLAY_ACTIONS.get(route_path)
    pending.secret_once = route_path in SECRET_ONCE_ROUTES
    rt = request.app.state.runtime
    reserve(session=session, pending=pending, actor=actor, now=now, ttl=ttl_of(rt.settings), box=rt.secret_box)


# --- ASGI: buffer and hash the body, store the response ------------------------------------------------------------

class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _read_body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class IdempotencyMiddleware:
    """Hash keyed API POSTs for `reserve`, then store their committed responses (below 500) for replays."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(API_PREFIX):
            return await self.app(scope, receive, send)
        values = [v for k, v in scope["headers"] if k == HEADER]
        if not values:
            return await self.app(scope, receive, send)
        key = values[0].decode("latin-1").strip()
        if len(values) > 1 or not KEY_RE.fullmatch(key):
            refusal = problem(400, "idempotency-key-invalid", "Invalid Idempotency-Key",
                              "Send one Idempotency-Key header of 1 to 255 printable ASCII characters.")
            return await refusal(scope, receive, send)
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return None
        except _TooLarge:
            refusal = problem(413, "too-large", "Request body too large",
                              f"A request with an Idempotency-Key may carry at most {MAX_BODY_BYTES} bytes.")
            return await refusal(scope, receive, send)
        pending = Pending(key=key, method="POST", path=request_path(scope),
                          request_sha256=hashlib.sha256(body).hexdigest())
        scope.setdefault("state", {})[STATE_KEY] = pending
        await self.app(scope, _replaying(body, receive), self._capturing(scope, pending, send))

    def _capturing(self, scope, pending: Pending, send):
        start: dict = {}
        chunks: list[bytes] = []
        size = 0

        async def capturing_send(message):
            nonlocal size
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body" and pending.record_id is not None:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_STORED_BYTES:
                    chunks.append(chunk)
                if not message.get("more_body", False) and start.get("status", 500) < 500 and size <= MAX_STORED_BYTES:
                    # why: stored before the last byte leaves, so a client that got the response always gets a replay
                    await self._store(scope, pending, start, b"".join(chunks))
            await send(message)

        return capturing_send

    async def _store(self, scope, pending: Pending, start: dict, body: bytes) -> None:
        app = scope["app"]
        rt = app.state.runtime
        headers = {k.decode("latin-1"): v.decode("latin-1")
                   for k, v in start.get("headers", []) if k.lower() in STORED_HEADERS}
        try:
            async with db_gate(app):
                await anyio.to_thread.run_sync(partial(
                    store_response, factory=rt.factory, pending=pending, status=start["status"], headers=headers,
                    body=body, now=rt.clock.now(), ttl=ttl_of(rt.settings), box=rt.secret_box))
        except Exception:  # why: the resource is committed; a retry is told so instead of running it again
            log.exception("could not store the response for Idempotency-Key %r", pending.key)


def _replaying(body: bytes, receive):
    sent = False

    async def replay_receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay_receive


async def _replay_response(request: Request, exc: Replay) -> Response:
    return Response(content=exc.body, status_code=exc.status, headers={**exc.headers, "Idempotent-Replayed": "true"})


def install(app) -> None:
    """Add the middleware and the replay handler to the FastAPI app."""
    app.add_middleware(IdempotencyMiddleware)
    app.add_exception_handler(Replay, _replay_response)
