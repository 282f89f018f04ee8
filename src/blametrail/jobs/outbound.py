"""The outbound delivery job: one attempt of one message, sent outside any transaction through the outbound guard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.netguard import OutboundPolicy, blocked_in, client
from blametrail.outbound import service as outbound


def send_once(*, factory: sessionmaker[Session], delivery_id: int, box: SecretBox, policy: OutboundPolicy,
              timeout: float, clock: Callable[[], datetime]) -> str:
    """Send one delivery once; record the answer and what happens next."""
    with db.transaction(factory) as s:
        msg = outbound.prepare(session=s, delivery_id=delivery_id, box=box)
    if msg is None:
        return "skipped"
    status, error = None, msg.get("error")
    if error is None:
        now = clock()
        headers = outbound.headers_for(msg["secret"], msg["msg_id"], int(now.timestamp()), msg["body"])
        try:
            policy.check_url(msg["url"])
            with client(policy, timeout=timeout, follow_redirects=False) as http:
                response = http.post(msg["url"], content=msg["body"], headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except Exception as exc:  # noqa: BLE001 — why: any failure is a failed attempt, said in words, never a crash
            blocked = blocked_in(exc)
            error = str(blocked) if blocked is not None else (
                "timed out" if isinstance(exc, httpx.TimeoutException) else f"{exc.__class__.__name__}: {exc}"[:300])
    with db.transaction(factory) as s:
        return outbound.record(session=s, delivery_id=delivery_id, now=clock(), status_code=status, error=error)
