"""The sweep job: re-queue postmortems and live summaries whose worker died or whose job was lost, then purge expired
rows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.orgs import idempotency, invitations, throttle
from blametrail.outbound import service as outbound
from blametrail.postmortems import service as postmortems
from blametrail.settings import Settings
from blametrail.summaries import service as summaries
from blametrail.vendors import service as vendors
from blametrail.vendors import tracker_sync

log = logging.getLogger(__name__)
PURGE_BATCH = 500  # rows deleted per transaction by the sweep's purges
PURGE_MAX_BATCHES = 20
INVITATION_KEEP_EXPIRED = timedelta(days=30)  # expired invitations stay listed (as expired) this long


def sweep_once(*, factory: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime],
               enqueue: Callable[[str, tuple], None]) -> list[int]:
    """Re-queue stuck postmortems and lost live-summary refreshes once, then purge expired rows; return the
    postmortem ids enqueued."""
    with db.transaction(factory) as session:
        ids = postmortems.sweep(session=session, now=clock(),
                                stale_generating_seconds=settings.stale_generation_seconds,
                                stale_queued_seconds=settings.stale_queued_seconds)
    for pm_id in ids:
        enqueue(postmortems.GENERATE_TASK, (pm_id,))
    if ids:
        log.warning("re-queued stuck postmortems: %s", ids)
    with db.transaction(factory) as session:
        lost = summaries.sweep(session=session, now=clock())
    for incident_id in lost:
        enqueue(summaries.TASK, (incident_id,))
    if lost:
        log.warning("re-queued live summaries whose job was lost, of incidents: %s", lost)
    with db.transaction(factory) as session:
        due = outbound.due(session=session, now=clock())  # retries whose time came, and sends whose job was lost
    for delivery_id in due:
        enqueue(outbound.DELIVER_TASK, (delivery_id,))
    if _has_linked_items(factory):
        enqueue(tracker_sync.RECONCILE_TASK, ())  # why: a tracker webhook that never arrived is caught up here
    purge_expired(factory=factory, settings=settings, clock=clock)
    return ids


def _has_linked_items(factory: sessionmaker[Session]) -> bool:
    with db.transaction(factory) as session:
        return bool(tracker_sync.due_for_reconcile(session=session, limit=1))


def purge_expired(*, factory: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime]) -> dict[str, int]:
    """Delete expired Idempotency-Keys, stale login-throttle rows, old invitations and the vendor event ids past
    their retention, a short transaction a batch; return counts."""
    now = clock()
    purges = {
        "idempotency_keys": partial(idempotency.purge_expired, now=now, ttl=idempotency.ttl_of(settings)),
        "login_throttles": partial(throttle.purge_stale, now=now, limits=throttle.Limits.from_settings(settings)),
        "invitations": partial(invitations.purge_expired, before=now - INVITATION_KEEP_EXPIRED),
        "vendor_events": partial(vendors.purge_events, now=now),
    }
    counts = dict.fromkeys(purges, 0)
    for name, purge in purges.items():
        for _ in range(PURGE_MAX_BATCHES):  # why: bounded; what is left waits for the next sweep
            with db.transaction(factory) as session:
                deleted = purge(session=session, limit=PURGE_BATCH)
            counts[name] += deleted
            if deleted < PURGE_BATCH:
                break
    return counts
