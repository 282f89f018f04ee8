"""The task queue (huey): embedded SQLite by default, Redis to scale out; consumers without signal hijacking that
log a queue outage once and retry with back-off."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer, Scheduler, Worker

log = logging.getLogger(__name__)
QUEUE_NAME = "blametrail"
FIRST_RETRY_SECONDS = 0.25  # while the queue's storage does not answer, each consumer thread waits this long first,
MAX_RETRY_SECONDS = 5.0  # then twice as long after each failure, up to this


def make_huey(queue_url: str, *, immediate: bool = False) -> Huey:
    """Build the huey instance for a queue URL (sqlite:///path, redis://…, or memory:// for tests)."""
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(QUEUE_NAME, url=queue_url, results=False, immediate=immediate)
    if queue_url.startswith("sqlite:///"):
        path = Path(queue_url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(path), results=False, immediate=immediate,
                          journal_mode="wal", timeout=30)
    if queue_url.startswith("memory://"):
        return MemoryHuey(QUEUE_NAME, results=False, immediate=immediate)
    raise ValueError(f"Unsupported BLAMETRAIL_QUEUE_URL {queue_url!r}: use sqlite:///path or redis://host:port/db.")


class Outage:
    """One log line when the queue's storage stops answering, one when it answers again (shared by all its threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def failed(self, exc: Exception) -> None:
        """Note a failed read; log only the first of an outage."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = (str(exc).splitlines() or [""])[0] or "no message"
        log.error("queue unreachable (%s: %s); consumers retry every %s-%s s until it answers",
                  type(exc).__name__, reason, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)

    def answered(self) -> None:
        """Note a successful read; log the end of an outage."""
        if self._since is None:  # why: the common case, without the lock
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("queue reachable again after %.1f s", time.monotonic() - since)


class _Backoff:
    def __init__(self) -> None:
        self.delay = FIRST_RETRY_SECONDS

    def wait(self, stop_flag) -> None:
        stop_flag.wait(self.delay)
        self.delay = min(self.delay * 2, MAX_RETRY_SECONDS)

    def reset(self) -> None:
        self.delay = FIRST_RETRY_SECONDS


_DOWN = object()  # what _read returns while the storage does not answer


def _read(loop, read):
    """Read from the queue's storage for a worker or scheduler loop; while it fails, note the outage and back off."""
    try:
        value = read()
    except Exception as exc:
        loop.outage.failed(exc)
        loop.retry.wait(loop.stop_flag)
        return _DOWN
    loop.retry.reset()
    loop.outage.answered()
    return value


class _Worker(Worker):
    """huey's worker loop, with an outage logged once and retried with back-off instead of a traceback every poll."""

    outage: Outage

    def loop(self, now=None):
        task = _read(self, self.huey.dequeue)
        if task is _DOWN:
            return
        if task is None:
            if not self.huey.storage.blocking:
                self.sleep()
            return
        self.delay = self.default_delay
        try:
            self.huey.execute(task, now)
        except Exception:
            self._logger.exception("Unhandled error during execution of task %s.", task.id)


class _Scheduler(Scheduler):
    """huey's scheduler loop (periodic tasks off), with the same outage handling as the workers."""

    outage: Outage

    def loop(self, now=None):
        due = _read(self, lambda: self.huey.read_schedule(now))
        if due is _DOWN:
            return
        for task in due:
            try:
                self.huey.enqueue(task)
            except Exception:  # why: read_schedule took it off the schedule; this task is lost, say so
                self._logger.exception("Error enqueueing %s.", task)
        self.stop_flag.wait(self.interval)


class ThreadConsumer(Consumer):
    """A huey consumer that leaves signal handling to its host (uvicorn or our CLI) and logs a queue outage once."""

    worker_class = _Worker
    scheduler_class = _Scheduler

    def __init__(self, huey: Huey, **options) -> None:
        self.outage = Outage()  # why: before super().__init__, which creates the workers and the scheduler
        super().__init__(huey, **options)

    def _create_worker(self):
        return self._with_outage(super()._create_worker())

    def _create_scheduler(self):
        return self._with_outage(super()._create_scheduler())

    def _with_outage(self, process):
        process.outage, process.retry = self.outage, _Backoff()
        return process

    def _set_signal_handlers(self) -> None:  # why: huey would take over SIGTERM inside uvicorn
        return None


def start_consumer(huey: Huey, workers: int) -> ThreadConsumer:
    """Start consumer threads in this process and return the consumer (call .stop() to end it)."""
    consumer = ThreadConsumer(huey, workers=workers, worker_type="thread", periodic=False,
                              initial_delay=0.02, max_delay=0.25, check_worker_health=True)
    consumer.start()
    log.info("queue consumer started with %s thread(s)", workers)
    return consumer


def ping(huey: Huey) -> None:
    """Raise if the queue's storage cannot be reached."""
    huey.pending_count()
