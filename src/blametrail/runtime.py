"""The runtime: settings turned into a database, a queue, tasks and background threads, built once per process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.ai import selection
from blametrail.clock import Clock, SystemClock
from blametrail.crypto import SecretBox
from blametrail.engines import base as engines
from blametrail.incidents import hooks as incident_hooks
from blametrail.jobs import queue as jobqueue
from blametrail.jobs import sweep
from blametrail.jobs import tasks as jobtasks
from blametrail.learning import index as search_index  # noqa: F401 — every session keeps the search index
from blametrail.monitors.engine import Scheduler
from blametrail.settings import Settings
from blametrail.summaries import service as summaries

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: Engine
    factory: sessionmaker[Session]
    huey: object
    tasks: dict
    engine_override: engines.Engine | None = None
    _consumer: object = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _sweeper: threading.Thread | None = None
    _scheduler: threading.Thread | None = None

    @property
    def secret_box(self) -> SecretBox:
        """Return the encryptor for secrets at rest."""
        return SecretBox(self.settings.effective_secret_key)

    def engine_for_org(self, session: Session, org_id: int) -> engines.Engine:
        """Return the engine an organization drafts postmortems and writes live summaries with: its own AI
        configuration, else the installation's (the summary job asks only when the organization has AI on)."""
        if self.engine_override is not None:
            return self.engine_override
        return selection.engine_of_org(session=session, settings=self.settings, org_id=org_id, box=self.secret_box)

    def enqueue(self, task: str, args: tuple) -> None:
        """Put a job on the queue."""
        self.tasks[task](*args)

    def sweep_once(self) -> list[int]:
        """Re-queue stuck postmortems and lost live-summary refreshes once, then purge expired rows; return the
        postmortem ids enqueued."""
        return sweep.sweep_once(factory=self.factory, settings=self.settings, clock=self.clock.now, enqueue=self.enqueue)

    def purge_expired(self) -> dict[str, int]:
        """Delete expired Idempotency-Keys, stale login-throttle rows and old invitations; return counts."""
        return sweep.purge_expired(factory=self.factory, settings=self.settings, clock=self.clock.now)

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
    queue_url: str | None = None, engine_override: engines.Engine | None = None,
) -> Runtime:
    """Build the process's runtime from settings (migrating the schema unless told not to)."""
    engine = db.make_engine(settings)
    if migrate:
        db.migrate(engine)
    huey = jobqueue.make_huey(queue_url or settings.resolved_queue_url, immediate=immediate)
    rt = Runtime(settings=settings, clock=clock or SystemClock(), engine=engine, factory=None, huey=huey, tasks={},
                 engine_override=engine_override)
    rt.factory = db.make_sessionmaker(engine, dispatcher=rt.enqueue)
    wire_hooks(rt.factory)
    rt.tasks = jobtasks.register(huey, rt)
    return rt


def wire_hooks(factory: sessionmaker[Session]) -> None:
    """Wire what the incidents service's hooks do: evidence or a resolution refreshes the live summary."""
    incident_hooks.install(factory, incident_hooks.IncidentHooks(evidence_changed=summaries.evidence_changed,
                                                                 resolved=summaries.request_refresh))
