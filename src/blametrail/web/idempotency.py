"""Idempotency-Key on API POSTs: the reservation (in the request's own transaction), the replay, the stored response.

How it holds with many processes and crashes:
- the middleware buffers the body of a keyed `POST /api/...`, hashes it and leaves a `Pending` in the scope state;
- `api_actor` (every API route depends on it) calls `reserve`, which inserts the `processing` row in the request's
  own transaction: it commits or rolls back with the resource. A concurrent duplicate hits the unique constraint
  (PostgreSQL makes it wait for the first transaction; SQLite serializes writers), finds the row and gets a 409;
- after a committed request produced a response below 500, the middleware stores it in a short transaction keyed
  by the reservation's random claim (a rolled-back reservation matches nothing), and a retry replays it;
- a row still `processing` long after it was taken means the process died between commit and store: answer 409,
  never run the request twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.errors import DomainError
from blametrail.orgs.models import IdempotencyRecord
from blametrail.orgs.service import Actor
from blametrail.web.errors import problem

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
API_PREFIX = "/api/"
STATE_KEY = "idempotency"
KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")
MAX_BODY_BYTES = 1_048_576  # a keyed request's body is buffered to hash it
MAX_STORED_BYTES = 1_048_576  # a bigger response is not stored (a retry is told it was processed)
STORED_HEADERS = (b"content-type", b"location")
IN_PROGRESS_GRACE = timedelta(seconds=60)  # a visible `processing` row younger than this is a live request
RETRY_AFTER_SECONDS = 1
PURGE_BATCH = 100
PATH_MAX = 2048
_IN_PROGRESS = "A request with this Idempotency-Key is still being processed; retry shortly."
_UNRECORDED = ("The original request with this Idempotency-Key was processed, but its response was not recorded; it "
               "was not run again. Look the result up with a GET, or send a new key to act again.")


class IdempotencyInProgress(DomainError):
    slug, status, title = "idempotency-in-progress", 409, "Request still in progress"


class IdempotencyUnrecorded(DomainError):
    slug, status, title = "idempotency-unrecorded", 409, "Request processed, response not recorded"


class IdempotencyMismatch(DomainError):
    slug, status, title = "idempotency-mismatch", 422, "Idempotency-Key reused"


@dataclass
class Pending:
    """A keyed POST on its way through: what identifies it and, once reserved, the row that will hold its response."""

    key: str
    method: str
    path: str
    request_sha256: str
    record_id: int | None = None
    claim: str | None = None


class Replay(Exception):
    """The stored response of an earlier request with the same key (turned into that response by the handler)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


def request_path(scope) -> str:
    """Return the path and query string of a request, as compared between retries."""
    query = scope.get("query_string", b"")
    path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
    return path[:PATH_MAX]


def reserve(*, session: Session, pending: Pending, actor: Actor, now: datetime, ttl: timedelta,
            box: SecretBox) -> None:
    """Take the key for this request inside its transaction, or raise: replay, in progress, unrecorded or mismatch."""
    if pending.record_id is not None or actor.token_id is None:
        return
    scope = (IdempotencyRecord.org_id == actor.org_id, IdempotencyRecord.token_id == actor.token_id,
             IdempotencyRecord.key == pending.key)
    record = session.scalar(select(IdempotencyRecord).where(*scope))
    if record is not None and record.created_at <= now - ttl:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id),
                        execution_options={"synchronize_session": False})
        session.expunge(record)
        record = None
    if record is None:
        claim = secrets.token_hex(16)
        row = IdempotencyRecord(org_id=actor.org_id, token_id=actor.token_id, key=pending.key, method=pending.method,
                                path=pending.path, request_sha256=pending.request_sha256, claim=claim,
                                status="processing", created_at=now)
        try:
            # why: a duplicate's unique violation must leave the request's own transaction usable
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            record = session.scalar(select(IdempotencyRecord).where(*scope))
            if record is None:  # the other request rolled back in between: the client may simply retry
                raise IdempotencyInProgress(_IN_PROGRESS, retry_after=RETRY_AFTER_SECONDS) from None
        else:
            pending.record_id, pending.claim = row.id, claim
            return
    _answer_existing(record, pending, now, box)


def _answer_existing(record: IdempotencyRecord, pending: Pending, now: datetime, box: SecretBox) -> None:
    if (record.method, record.path, record.request_sha256) != (pending.method, pending.path, pending.request_sha256):
        raise IdempotencyMismatch(
            "Idempotency-Key reused with a different request: a key stands for one request (same path and body); "
            "use a new key for a new request.")
    if record.status == "done":
        try:
            body = open_body(box, record.response_body or b"")
        except ValueError:  # sealed with a secret key no longer configured
            raise IdempotencyUnrecorded(_UNRECORDED) from None
        raise Replay(record.response_status or 200, dict(record.response_headers or {}), body)
    if now - record.created_at < IN_PROGRESS_GRACE:
        raise IdempotencyInProgress(_IN_PROGRESS, retry_after=RETRY_AFTER_SECONDS)
    raise IdempotencyUnrecorded(_UNRECORDED)


# why: responses can carry secrets shown once (new API tokens, webhook secrets): they rest encrypted. latin-1 maps
# every byte to one character and back, so any body survives SecretBox's text interface unchanged.
def seal_body(box: SecretBox, body: bytes) -> bytes:
    """Encrypt a response body for storage."""
    return box.encrypt(body.decode("latin-1")).encode("ascii")


def open_body(box: SecretBox, sealed: bytes) -> bytes:
    """Decrypt a stored response body (ValueError when no configured key opens it)."""
    return box.decrypt(sealed.decode("ascii")).encode("latin-1")


def store_response(*, factory: sessionmaker[Session], pending: Pending, status: int, headers: dict[str, str],
                   body: bytes, now: datetime, ttl: timedelta, box: SecretBox) -> bool:
    """Record the response of a committed reservation (False when its transaction rolled back); purge expired keys."""
    with db.transaction(factory) as session:
        result = session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == pending.record_id, IdempotencyRecord.claim == pending.claim,
                   IdempotencyRecord.status == "processing")
            .values(status="done", response_status=status, response_headers=headers,
                    response_body=seal_body(box, body)),
            execution_options={"synchronize_session": False})
        stored = result.rowcount == 1
        purge_expired(session=session, now=now, ttl=ttl)
    return stored


def purge_expired(*, session: Session, now: datetime, ttl: timedelta, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` expired keys (rows other transactions hold are skipped); return how many."""
    ids = list(session.scalars(
        select(IdempotencyRecord.id).where(IdempotencyRecord.created_at <= now - ttl)
        .order_by(IdempotencyRecord.id).limit(limit).with_for_update(skip_locked=True)))
    if ids:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)),
                        execution_options={"synchronize_session": False})
    return len(ids)


def ttl_of(settings) -> timedelta:
    """Return how long keys are kept."""
    return timedelta(hours=settings.idempotency_ttl_hours)


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
        from blametrail.web.deps import db_gate  # why: deps imports this module for the reservation

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
