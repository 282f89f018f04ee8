"""The task queue (huey): embedded SQLite by default, Redis to scale out; consumers without signal hijacking."""

from __future__ import annotations

import logging
from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

log = logging.getLogger(__name__)
QUEUE_NAME = "blametrail"


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


class ThreadConsumer(Consumer):
    """A huey consumer that leaves signal handling to its host (uvicorn or our CLI)."""

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
