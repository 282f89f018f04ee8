"""The monitor scheduler: lease due monitors, check them concurrently, apply their results in batches."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
from sqlalchemy.orm import sessionmaker

from blametrail import __version__, db, netguard
from blametrail.clock import Clock
from blametrail.monitors import service
from blametrail.monitors.checks import MAX_REDIRECTS, CheckOutcome, CheckTarget, run_check
from blametrail.netguard import OutboundPolicy
from blametrail.settings import Settings


class SchedulerDeps(Protocol):
    """What the scheduler needs from its process (the Runtime satisfies it): settings, clock, sessions."""

    settings: Settings
    clock: Clock
    factory: sessionmaker


log = logging.getLogger(__name__)


def default_owner() -> str:
    """Return a name for this scheduler that no other process shares (host, pid, random suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def make_client(concurrency: int, policy: OutboundPolicy | None = None) -> httpx.Client:
    """Return the shared HTTP client: redirects followed (at most 5), every hop vetted by the SSRF guard."""
    # why: no keep-alive, so every check sees DNS, connect and TLS the way a new visitor would (a fresh connection)
    return netguard.client(policy, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                           limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
                           headers={"User-Agent": f"BlameTrail-Monitor/{__version__}"})


MAX_APPLY = 100  # check results applied in one transaction at most


@dataclass
class _Done:
    """A finished check waiting to be applied; `applied` completes once it is (or could not be)."""

    target: CheckTarget
    outcome: CheckOutcome
    checked_at: datetime
    applied: Future


class Scheduler:
    """Runs due monitor checks; any number of schedulers may share a database (the lease keeps checks unique).

    Checks run in a thread pool. A finished check's result joins a queue; the check thread that finds no other
    applying results applies everything queued, in one transaction per MAX_APPLY results (group commit: under load
    the commit and the monitors' lock are paid once per batch, not once per check). While every check slot is busy
    the scheduler claims again as soon as half of them are free, instead of waiting for its next tick.
    """

    def __init__(self, runtime: SchedulerDeps, owner: str | None = None) -> None:
        self.rt = runtime
        self.owner = owner or default_owner()
        self.concurrency = runtime.settings.monitor_concurrency
        self._client = make_client(self.concurrency, netguard.policy_from(runtime.settings))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="blametrail-check")
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # notified when checks finish (room to claim more)
        self._in_flight = 0
        self._finished: list[_Done] = []
        self._applying = False
        self._filled = False  # the last tick claimed every free slot: more checks may be due already

    def tick(self, *, wait_for_checks: bool = True) -> int:
        """Claim the due monitors this scheduler has room for and run them; return how many were started.
        With wait_for_checks, return once their results are applied."""
        with self._lock:
            room = self.concurrency - self._in_flight
        if room <= 0:
            return 0
        checked_at = self.rt.clock.now()
        with db.transaction(self.rt.factory) as session:
            ids = service.claim_due(session=session, now=checked_at, owner=self.owner, limit=room)
            batch = service.targets(session=session, monitor_ids=ids)
        self._filled = len(ids) >= room
        applied: list[Future] = []
        for target in batch:
            with self._lock:
                self._in_flight += 1
            applied.append(Future())
            self._pool.submit(self._check, target, checked_at, applied[-1])
        if wait_for_checks and applied:
            wait(applied)
        return len(applied)

    def _check(self, target: CheckTarget, checked_at: datetime, applied: Future) -> None:
        try:
            outcome = run_check(self._client, target)
        except Exception:  # why: the lease expires and another tick retries; one bad monitor never stops the rest
            log.exception("monitor %s: could not run its check", target.monitor_id)
            self._release(1)
            applied.set_result(None)
            return
        self._apply_queued(_Done(target, outcome, checked_at, applied))

    def _apply_queued(self, done: _Done) -> None:
        with self._lock:
            self._finished.append(done)
            if self._applying:  # the thread applying now takes this one in its next batch
                return
            self._applying = True
        while True:
            with self._lock:
                batch, self._finished = self._finished[:MAX_APPLY], self._finished[MAX_APPLY:]
                if not batch:
                    self._applying = False
                    return
            try:
                self._apply(batch)
            finally:
                self._release(len(batch))
                for item in batch:
                    item.applied.set_result(None)

    def _apply(self, batch: list[_Done]) -> None:
        settings, now = self.rt.settings, self.rt.clock.now()
        try:
            with db.transaction(self.rt.factory) as session:
                service.apply_results(session=session, now=now, owner=self.owner, retention=settings.check_retention,
                                      checks=[service.Checked(d.target.monitor_id, d.outcome, d.checked_at)
                                              for d in batch])
            return
        except Exception:
            if len(batch) == 1:
                log.exception("monitor %s: could not record its check", batch[0].target.monitor_id)
                return
            log.warning("%d check results could not be recorded together; recording them one by one", len(batch),
                        exc_info=True)
        for item in batch:
            self._apply([item])

    def _release(self, n: int) -> None:
        with self._lock:
            self._in_flight -= n
            self._freed.notify_all()

    def run_forever(self, stop: threading.Event) -> None:
        """Tick every monitor_tick_seconds (sooner while every check slot was taken) until `stop` is set, then let
        running checks finish."""
        log.info("monitor scheduler %s started", self.owner)
        tick = self.rt.settings.monitor_tick_seconds
        try:
            while not stop.is_set():
                try:
                    self.tick(wait_for_checks=False)
                except Exception:  # why: a database blip must not kill the loop
                    log.exception("monitor scheduler tick failed; will retry")
                    self._filled = False
                if not self._filled:
                    stop.wait(tick)
                    continue
                deadline = time.monotonic() + tick
                with self._lock:  # more may be due: claim again once half the slots are free (or at the next tick)
                    while (self._in_flight > self.concurrency // 2 and not stop.is_set()
                           and (left := deadline - time.monotonic()) > 0):
                        self._freed.wait(min(left, 0.2))
        finally:
            self.close()

    def close(self) -> None:
        """Wait for running checks, then release the threads and the HTTP client."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()
