"""Liveness (/healthz) touches nothing; readiness (/readyz) checks the database and the queue and names what failed."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from blametrail.app import create_app
from blametrail.runtime import build_runtime


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def probe(settings, clock):
    """GET a health path from an app whose database and queue URLs are given."""
    runtimes = []

    def get(path: str, *, database_url: str | None = None, queue_url: str = "memory://"):
        s = settings.model_copy(update={"database_url": database_url}) if database_url else settings
        rt = build_runtime(s, clock=clock, migrate=False, queue_url=queue_url)
        runtimes.append(rt)
        with TestClient(create_app(s, runtime=rt, background=False)) as c:
            return c.get(path)

    yield get
    for rt in runtimes:
        rt.close()


def test_ready_when_the_database_and_the_embedded_queue_answer(probe, tmp_path):
    r = probe("/readyz", queue_url=f"sqlite:///{tmp_path / 'queue.db'}")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "queue": "ok"},
                        "monitor_schedule": {"overdue": 0, "lag_seconds": 0.0, "late": False}}
    assert "set-cookie" not in r.headers


def test_not_ready_names_the_queue_when_redis_is_down(probe):
    r = probe("/readyz", queue_url=f"redis://127.0.0.1:{closed_port()}/0")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["type"], body["status"], body["detail"]) == ("/problems/not-ready", 503, "Unreachable: queue.")
    assert body["checks"] == {"database": "ok", "queue": "unreachable (ConnectionError)"}
    assert probe("/healthz", queue_url=f"redis://127.0.0.1:{closed_port()}/0").json() == {"status": "ok"}


def test_not_ready_names_the_database_without_leaking_its_address(probe):
    down = f"postgresql+psycopg://blametrail:hunter22@127.0.0.1:{closed_port()}/blametrail"
    r = probe("/readyz", database_url=down, queue_url=f"redis://127.0.0.1:{closed_port()}/0")
    assert r.status_code == 503
    assert r.json()["detail"] == "Unreachable: database, queue."
    assert r.json()["checks"]["database"] == "unreachable (OperationalError)"
    assert "hunter22" not in r.text and "127.0.0.1" not in r.text
    assert probe("/healthz", database_url=down).status_code == 200


def test_ready_with_redis_as_the_queue(probe, redis_url):
    if not redis_url:
        pytest.skip("needs BLAMETRAIL_TEST_REDIS_URL (pass 2)")
    r = probe("/readyz", queue_url=redis_url)
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "queue": "ok"}
