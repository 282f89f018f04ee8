"""While the queue's storage is down, consumers log one line per outage and back off; one line when it is back."""

from __future__ import annotations

import logging
import socket
import time

from blametrail.jobs import queue as jobqueue


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def loud(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_redis_down_logs_one_line_and_backs_off(caplog):
    caplog.set_level(logging.INFO)
    huey = jobqueue.make_huey(f"redis://127.0.0.1:{closed_port()}/0")
    reads = []
    dequeue = huey.dequeue
    huey.dequeue = lambda: reads.append(time.monotonic()) or dequeue()
    started = time.monotonic()
    consumer = jobqueue.start_consumer(huey, 2)
    try:
        time.sleep(1.6)  # why: long enough for 0.25 s polling to have logged 6+ tracebacks per thread
    finally:
        consumer.stop(graceful=True)
    assert time.monotonic() - started < 3  # stopping does not wait out a back-off
    lines = [(r.name, r.levelname, r.getMessage().split(" (")[0]) for r in loud(caplog)]
    assert lines == [("blametrail.jobs.queue", "ERROR", "queue unreachable")]
    assert not any(r.exc_info for r in caplog.records)
    assert "ConnectionError" in loud(caplog)[0].getMessage()
    assert len(reads) <= 2 * 4  # 0 s, 0.25 s, 0.75 s, (1.75 s) per worker thread, not one every 0.25 s


def test_the_end_of_an_outage_is_logged_once(caplog):
    caplog.set_level(logging.INFO)
    huey = jobqueue.make_huey("memory://")
    down = {"now": True}

    def flaky(method):
        def call(*args, **kwargs):
            if down["now"]:
                raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
            return method(*args, **kwargs)
        return call

    huey.storage.dequeue = flaky(huey.storage.dequeue)
    huey.storage.read_schedule = flaky(huey.storage.read_schedule)
    consumer = jobqueue.start_consumer(huey, 2)
    try:
        assert wait_for(lambda: loud(caplog), 1)
        time.sleep(0.3)  # a few failed retries more, still one line
        down["now"] = False
        assert wait_for(lambda: len(loud(caplog)) > 1, 2)
    finally:
        consumer.stop(graceful=True)
    messages = [r.getMessage() for r in loud(caplog)]
    assert len(messages) == 2, messages
    assert messages[0].startswith("queue unreachable (ConnectionError: Error 111 connecting to redis:6379.")
    assert messages[1].startswith("queue reachable again after ")
