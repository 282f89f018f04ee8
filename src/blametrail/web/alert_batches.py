"""Group commit for alert deliveries: deliveries that arrive while one transaction runs share the next one.

Each alert delivery is still checked, answered and counted on its own (the same order of checks, problems and
answer as before), but the deliveries waiting in a process are applied one after another in one transaction, and
each sender is answered after that transaction commits — never before, so an acknowledged delivery is stored.
One batch runs at a time per process (per event loop); a delivery arriving while it runs waits for the next, so
an idle server answers a lone delivery at once and a busy one commits many per transaction (the commit, the
summary-refresh request per incident and the webhook lookups are paid once per batch instead of once per delivery).

If anything but a delivery's own problem (404, 401, 400, 422 …) fails inside a batch, the batch is rolled back and
each of its deliveries runs again in a transaction of its own, so one delivery's failure is only its own.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import anyio
from fastapi import Request
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.errors import DomainError
from blametrail.web.dbgate import db_gate

log = logging.getLogger(__name__)

LINGER_TURNS = 3
MAX_BATCH = 64  # deliveries per transaction at most (a transaction holds SQLite's write lock while it runs)


@dataclass
class Delivery:
    """One delivery waiting for its batch."""

    check: Callable[[Session], object]  # reads only: raises the delivery's problem, or returns what writing needs
    # records and ingests checked deliveries at `now` (the same function for every delivery of a kind); returns the
    # answer of each
    write_all: Callable[[Session, list, datetime], list[dict]]
    future: asyncio.Future = field(repr=False)


class _Batches:
    """The waiting deliveries of one event loop and whether a batch is running."""

    def __init__(self) -> None:
        self.waiting: list[Delivery] = []
        self.running = False
        self.task: asyncio.Task | None = None  # why: the loop keeps only a weak reference to a task


_BY_LOOP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def submit(request: Request, check: Callable[[Session], object],
                 write_all: Callable[[Session, list, datetime], list[dict]]) -> dict:
    """Apply a delivery in the next batch; return its answer or raise its problem."""
    loop = asyncio.get_running_loop()
    batches = _BY_LOOP.get(loop)
    if batches is None:
        batches = _BY_LOOP[loop] = _Batches()
    delivery = Delivery(check=check, write_all=write_all, future=loop.create_future())
    batches.waiting.append(delivery)
    if not batches.running:
        batches.running = True
        batches.task = loop.create_task(_drain(request.app, batches))
    return await delivery.future


async def _drain(app, batches: _Batches) -> None:
    """Run batches until nothing waits."""
    batch: list[Delivery] = []
    try:
        while batches.waiting:
            for _ in range(LINGER_TURNS):  # why: let the loop read the deliveries already on their way in
                await asyncio.sleep(0)
            batch, batches.waiting = batches.waiting[:MAX_BATCH], batches.waiting[MAX_BATCH:]
            try:
                async with db_gate(app):
                    outcomes = await anyio.to_thread.run_sync(_run, app.state.runtime, batch)
            except Exception as exc:
                outcomes = [exc] * len(batch)
            _settle(batch, outcomes)
            batch = []
    except BaseException as exc:  # why: cancelled (the server stops): no sender may wait forever
        everyone, batches.waiting = batch + batches.waiting, []
        _settle(everyone, [exc] * len(everyone))
        raise
    finally:
        batches.running, batches.task = False, None


def _settle(batch: list[Delivery], outcomes: list) -> None:
    for delivery, outcome in zip(batch, outcomes, strict=True):
        if delivery.future.done():
            continue
        if isinstance(outcome, BaseException):
            delivery.future.set_exception(outcome)
        else:
            delivery.future.set_result(outcome)


def _run(rt, batch: list[Delivery]) -> list:
    """Apply the batch in one transaction; on a failure that is not a delivery's own problem, one by one."""
    if len(batch) > 1:
        session = rt.factory()
        try:
            now = rt.clock.now()
            outcomes: list = [None] * len(batch)
            checked: dict[Callable, list[tuple[int, object]]] = {}
            for i, delivery in enumerate(batch):
                try:
                    checked.setdefault(delivery.write_all, []).append((i, delivery.check(session)))
                except DomainError as exc:  # why: the checks write nothing, so the batch goes on without it
                    outcomes[i] = exc
            for write_all, items in checked.items():  # anything raised while writing: one by one, below
                for (i, _), answer in zip(items, write_all(session, [c for _, c in items], now), strict=True):
                    outcomes[i] = answer
            db.commit(session)
            return outcomes
        except Exception:
            db.rollback(session)
            log.warning("a batch of %d alert deliveries failed; applying them one by one", len(batch), exc_info=True)
        finally:
            session.close()
    return [_alone(rt, delivery) for delivery in batch]


def _alone(rt, delivery: Delivery):
    try:
        with db.transaction(rt.factory) as session:
            return delivery.write_all(session, [delivery.check(session)], rt.clock.now())[0]
    except Exception as exc:
        return exc
