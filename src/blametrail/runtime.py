"""The runtime: settings turned into a database, a queue, tasks and background threads, built once per process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.ai.base import DraftingEngine, PerOrgEngine, engine_for
from blametrail.clock import Clock, SystemClock
from blametrail.crypto import SecretBox
from blametrail.jobs import queue as jobqueue
from blametrail.jobs import tasks as jobtasks
from blametrail.monitors.engine import Scheduler
from blametrail.orgs import idempotency, invitations, throttle
from blametrail.postmortems import service as postmortems
from blametrail.settings import Settings

log = logging.getLogger(__name__)
PURGE_BATCH = 500  # rows deleted per transaction by the sweep's purges
PURGE_MAX_BATCHES = 20
INVITATION_KEEP_EXPIRED = timedelta(days=30)  # expired invitations stay listed (as expired) this long


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: Engine
    factory: sessionmaker[Session]
    huey: object
    tasks: dict
    engine_override: DraftingEngine | None = None
    _consumer: object = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _sweeper: threading.Thread | None = None
    _scheduler: threading.Thread | None = None

    @property
    def secret_box(self) -> SecretBox:
        """Return the encryptor for secrets at rest."""
        return SecretBox(self.settings.effective_secret_key)

    def drafting_engine(self, org_id: int | None = None) -> DraftingEngine:
        """Return the drafting engine of an organization (its own AI config, else the installation's settings).

        Without an organization: the installation's engine, which a job resolves per organization (PerOrgEngine).
        """
        if self.engine_override is not None:
            return self.engine_override
        if org_id is None:
            return PerOrgEngine(engine_for(self.settings), self.drafting_engine)
        from blametrail.ai import service as ai_service

        with db.transaction(self.factory) as session:  # why: short; the model call happens after it ends
            config = ai_service.get_config(session=session, org_id=org_id)
            return engine_for(self.settings, config, self.secret_box)

    def enqueue(self, task: str, args: tuple) -> None:
        """Put a job on the queue."""
        self.tasks[task](*args)

    def sweep_once(self) -> list[int]:
        """Re-queue stuck postmortems once, then purge expired rows; return the ids enqueued."""
        with db.transaction(self.factory) as session:
            ids = postmortems.sweep(session=session, now=self.clock.now(),
                                    stale_generating_seconds=self.settings.stale_generation_seconds,
                                    stale_queued_seconds=self.settings.stale_queued_seconds)
        for pm_id in ids:
            self.enqueue(postmortems.GENERATE_TASK, (pm_id,))
        if ids:
            log.warning("re-queued stuck postmortems: %s", ids)
        self.purge_expired()
        return ids

    def purge_expired(self) -> dict[str, int]:
        """Delete expired Idempotency-Keys and stale login-throttle rows, a short transaction a batch; return counts."""
        now = self.clock.now()
        purges = {
            "idempotency_keys": partial(idempotency.purge_expired, now=now, ttl=idempotency.ttl_of(self.settings)),
            "login_throttles": partial(throttle.purge_stale, now=now,
                                       limits=throttle.Limits.from_settings(self.settings)),
            "invitations": partial(invitations.purge_expired, before=now - INVITATION_KEEP_EXPIRED),
        }
        counts = dict.fromkeys(purges, 0)
        for name, purge in purges.items():
            for _ in range(PURGE_MAX_BATCHES):  # why: bounded; what is left waits for the next sweep
                with db.transaction(self.factory) as session:
                    deleted = purge(session=session, limit=PURGE_BATCH)
                counts[name] += deleted
                if deleted < PURGE_BATCH:
                    break
        return counts

    def _sweep_loop(self) -> None:
        failing = False
        while not self._stop.wait(self.settings.sweep_interval_seconds):
            try:
                self.sweep_once()
            except Exception as exc:  # why: a database or queue blip must not kill the sweeper
                if not failing:  # why: one line per outage, not a traceback every interval while it lasts
                    log.error("sweep failed (%s: %s); retrying every %s s", type(exc).__name__, str(exc)[:200],
                              self.settings.sweep_interval_seconds)
                failing = True
            else:
                if failing:
                    log.warning("sweep works again")
                failing = False

    def start_background(self, *, workers: int, sweep: bool = True, scheduler: bool = False) -> None:
        """Start queue consumer threads, the stuck-work sweeper and (if asked) the monitor scheduler in this process."""
        if workers > 0:
            self._consumer = jobqueue.start_consumer(self.huey, workers)
        if sweep or scheduler:
            self._stop.clear()
        if sweep:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="blametrail-sweeper", daemon=True)
            self._sweeper.start()
        if scheduler:
            self._scheduler = threading.Thread(target=Scheduler(self).run_forever, args=(self._stop,),
                                               name="blametrail-scheduler", daemon=True)
            self._scheduler.start()

    def stop_background(self) -> None:
        """Stop the consumer (letting running jobs finish), the sweeper and the monitor scheduler."""
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=65)  # a running check ends within its timeout (at most 60 s)
            self._scheduler = None
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None

    def close(self) -> None:
        """Stop background work and release connections."""
        self.stop_background()
        self.engine.dispose()


def build_runtime(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True, immediate: bool = False,
    queue_url: str | None = None, engine_override: DraftingEngine | None = None,
) -> Runtime:
    """Build the process's runtime from settings (migrating the schema unless told not to)."""
    engine = db.make_engine(settings)
    if migrate:
        db.migrate(engine)
    huey = jobqueue.make_huey(queue_url or settings.resolved_queue_url, immediate=immediate)
    rt = Runtime(settings=settings, clock=clock or SystemClock(), engine=engine, factory=None, huey=huey, tasks={},
                 engine_override=engine_override)
    rt.factory = db.make_sessionmaker(engine, dispatcher=rt.enqueue)
    rt.tasks = jobtasks.register(huey, rt)
    return rt
