"""Tracker jobs: push a person's status change to the linked issue, and reconcile linked items with their issues."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.netguard import OutboundPolicy
from blametrail.vendors import tracker_sync


def run_push(*, factory: sessionmaker[Session], item_id: int, box: SecretBox, policy: OutboundPolicy, timeout: float,
             clock: Callable[[], datetime]) -> str:
    """Move the item's issue to the item's status (one short transaction around one or two calls)."""
    with db.transaction(factory) as s:
        return tracker_sync.push_status(session=s, item_id=item_id, box=box, policy=policy, timeout=timeout,
                                        now=clock())


def run_reconcile(*, factory: sessionmaker[Session], box: SecretBox, policy: OutboundPolicy, timeout: float,
                  clock: Callable[[], datetime]) -> dict:
    """Read the issues of the linked open items that were synced longest ago; return counts by outcome."""
    with db.transaction(factory) as s:
        due = tracker_sync.due_for_reconcile(session=s)
    counts: dict[str, int] = {}
    for item_id in due:
        with db.transaction(factory) as s:
            outcome = tracker_sync.reconcile_item(session=s, item_id=item_id, box=box, policy=policy,
                                                  timeout=timeout, now=clock())
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
