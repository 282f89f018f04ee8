"""The monitor scheduler: lease due monitors, check them concurrently, apply each result in its own transaction."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Protocol

import httpx
from sqlalchemy.orm import sessionmaker

from blametrail import __version__, db, netguard
from blametrail.clock import Clock
from blametrail.monitors import service
from blametrail.monitors.checks import MAX_REDIRECTS, CheckTarget, run_check
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


class Scheduler:
    """Runs due monitor checks; any number of schedulers may share a database (the lease keeps checks unique)."""

    def __init__(self, runtime: SchedulerDeps, owner: str | None = None) -> None:
        self.rt = runtime
        self.owner = owner or default_owner()
        self.concurrency = runtime.settings.monitor_concurrency
        self._client = make_client(self.concurrency, netguard.policy_from(runtime.settings))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="blametrail-check")
        self._lock = threading.Lock()
        self._in_flight = 0

    def tick(self, *, wait_for_checks: bool = True) -> int:
        """Claim the due monitors this scheduler has room for and run them; return how many were started."""
        with self._lock:
            room = self.concurrency - self._in_flight
        if room <= 0:
            return 0
        checked_at = self.rt.clock.now()
        with db.transaction(self.rt.factory) as session:
            ids = service.claim_due(session=session, now=checked_at, owner=self.owner, limit=room)
            batch = service.targets(session=session, monitor_ids=ids)
        futures: list[Future] = []
        for target in batch:
            with self._lock:
                self._in_flight += 1
            futures.append(self._pool.submit(self._check, target, checked_at))
        if wait_for_checks and futures:
            wait(futures)
        return len(futures)

    def _check(self, target: CheckTarget, checked_at: datetime) -> None:
        try:
            outcome = run_check(self._client, target)
            with db.transaction(self.rt.factory) as session:
                service.apply_result(session=session, monitor_id=target.monitor_id, outcome=outcome,
                                     checked_at=checked_at, now=self.rt.clock.now(), owner=self.owner,
                                     retention=self.rt.settings.check_retention)
        except Exception:  # why: the lease expires and another tick retries; one bad monitor never stops the rest
            log.exception("monitor %s: could not run or record its check", target.monitor_id)
        finally:
            with self._lock:
                self._in_flight -= 1

    def run_forever(self, stop: threading.Event) -> None:
        """Tick every monitor_tick_seconds until `stop` is set, then let running checks finish."""
        log.info("monitor scheduler %s started", self.owner)
        try:
            while not stop.is_set():
                try:
                    self.tick(wait_for_checks=False)
                except Exception:  # why: a database blip must not kill the loop
                    log.exception("monitor scheduler tick failed; will retry")
                stop.wait(self.rt.settings.monitor_tick_seconds)
        finally:
            self.close()

    def close(self) -> None:
        """Wait for running checks, then release the threads and the HTTP client."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()
