"""Idempotency keys of API POSTs, stored: the reservation, the answer to a retry, the stored response, the purge.

How it holds with many processes and crashes (web/idempotency.py is the HTTP side):
- `reserve` inserts the `processing` row in the request's own transaction: it commits or rolls back with the
  resource. A concurrent duplicate hits the unique constraint (PostgreSQL makes it wait for the first transaction;
  SQLite serializes writers), finds the row and gets a 409;
- after a committed request produced a response below 500, `store_response` records it in a short transaction keyed
  by the reservation's random claim (a rolled-back reservation matches nothing), and a retry replays it;
- a retry is answered only if the caller's current role may still perform the route's action (the role table's
  403 otherwise), and a response that showed a secret once is never kept, so no retry can show it again;
- a row still `processing` long after it was taken means the process died between commit and store: answer 409,
  never run the request twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.errors import DomainError
from blametrail.orgs.models import IdempotencyRecord
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor

IN_PROGRESS_GRACE = timedelta(seconds=60)  # a visible `processing` row younger than this is a live request
RETRY_AFTER_SECONDS = 1
PURGE_BATCH = 100
_IN_PROGRESS = "A request with this Idempotency-Key is still being processed; retry shortly."
_UNRECORDED = ("The original request with this Idempotency-Key was processed, but its response was not recorded; it "
               "was not run again. Look the result up with a GET, or send a new key to act again.")
_SECRET_ONCE = ("The original request with this Idempotency-Key succeeded, but its response held a secret that is "
                "shown only once, so it was not kept and cannot be replayed; the request was not run again. Look the "
                "result up with a GET (the secret is not shown again), or send a new key to create or rotate another "
                "secret.")


class IdempotencyInProgress(DomainError):
    slug, status, title = "idempotency-in-progress", 409, "Request still in progress"


class IdempotencyUnrecorded(DomainError):
    slug, status, title = "idempotency-unrecorded", 409, "Request processed, response not recorded"


class IdempotencySecretShownOnce(DomainError):
    slug, status, title = "idempotency-secret-shown-once", 409, "Request processed, its secret was shown once"


class IdempotencyMismatch(DomainError):
    slug, status, title = "idempotency-mismatch", 422, "Idempotency-Key reused"


@dataclass
class Pending:
    """A keyed POST on its way through: what identifies it, its route's rule and, once reserved, its row.

    `action` is what the route's role check requires (None: unknown, so nothing is replayed); `secret_once` marks a
    response that shows a secret once (kept without its body).
    """

    key: str
    method: str
    path: str
    request_sha256: str
    action: Action | None = None
    secret_once: bool = False
    record_id: int | None = None
    claim: str | None = None


class Replay(Exception):
    """The stored response of an earlier request with the same key (turned into that response by the web layer)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


def reserve(*, session: Session, pending: Pending, actor: Actor, now: datetime, ttl: timedelta,
            box: SecretBox) -> None:
    """Take the key for this request inside its transaction, or raise: replay, forbidden, in progress, unrecorded…"""
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
    _answer_existing(record, pending, actor, now, box)


def _answer_existing(record: IdempotencyRecord, pending: Pending, actor: Actor, now: datetime, box: SecretBox) -> None:
    # why: the key stands for an action; a caller who may no longer perform it (demoted since) learns nothing of it
    if pending.action is not None:
        require(actor.role, pending.action)
    if (record.method, record.path, record.request_sha256) != (pending.method, pending.path, pending.request_sha256):
        raise IdempotencyMismatch(
            "Idempotency-Key reused with a different request: a key stands for one request (same path and body); "
            "use a new key for a new request.")
    if record.status == "done":
        if pending.secret_once:
            raise IdempotencySecretShownOnce(_SECRET_ONCE)
        if pending.action is None or record.response_body is None:
            raise IdempotencyUnrecorded(_UNRECORDED)
        try:
            body = open_body(box, record.response_body)
        except ValueError:  # sealed with a secret key no longer configured
            raise IdempotencyUnrecorded(_UNRECORDED) from None
        raise Replay(record.response_status or 200, dict(record.response_headers or {}), body)
    if now - record.created_at < IN_PROGRESS_GRACE:
        raise IdempotencyInProgress(_IN_PROGRESS, retry_after=RETRY_AFTER_SECONDS)
    raise IdempotencyUnrecorded(_UNRECORDED)


# why: a response may still carry something sensitive: it rests encrypted. latin-1 maps every byte to one character
# and back, so any body survives SecretBox's text interface unchanged.
def seal_body(box: SecretBox, body: bytes) -> bytes:
    """Encrypt a response body for storage."""
    return box.encrypt(body.decode("latin-1")).encode("ascii")


def open_body(box: SecretBox, sealed: bytes) -> bytes:
    """Decrypt a stored response body (ValueError when no configured key opens it)."""
    return box.decrypt(sealed.decode("ascii")).encode("latin-1")


def store_response(*, factory: sessionmaker[Session], pending: Pending, status: int, headers: dict[str, str],
                   body: bytes, now: datetime, ttl: timedelta, box: SecretBox) -> bool:
    """Record the response of a committed reservation (False when its transaction rolled back); purge expired keys.

    A response showing a secret once is recorded without its body: the key stays taken, the secret is not kept.
    """
    sealed = None if pending.secret_once else seal_body(box, body)
    with db.transaction(factory) as session:
        result = session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == pending.record_id, IdempotencyRecord.claim == pending.claim,
                   IdempotencyRecord.status == "processing")
            .values(status="done", response_status=status, response_headers=headers, response_body=sealed),
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
