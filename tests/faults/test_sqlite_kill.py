"""kill -9 a server on SQLite fifty times while it takes writes: the files stay sound, no acknowledged write is lost."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate
from blametrail.runtime import build_runtime
from tests.factories import Factory
from tests.faults.support import blametrail_env, free_port, wait_until

pytestmark = pytest.mark.slow
KILLS = 50
WRITERS = 4


class Writers:
    """Threads posting incident updates without pause; every 2xx is recorded with the id the server gave."""

    def __init__(self, base: str, headers: dict, incident_id: int) -> None:
        self.base, self.headers, self.incident_id = base, headers, incident_id
        self.acked: dict[str, int] = {}  # body → timeline entry id, only for answers 2xx
        self.cut = 0  # requests that got no answer (the server died under them)
        self.refused = 0  # answers other than 2xx
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(WRITERS)]

    def __enter__(self) -> Writers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def acks(self) -> int:
        with self._lock:
            return len(self.acked)

    def _run(self, n: int) -> None:
        url = f"{self.base}/api/v1/incidents/{self.incident_id}/updates"
        seq = 0
        with httpx.Client(headers=self.headers, timeout=20) as client:
            while not self._stop.is_set():
                seq += 1
                body = f"writer {n} update {seq}"
                try:
                    r = client.post(url, json={"body": body})
                except httpx.TransportError:
                    with self._lock:
                        self.cut += 1
                    time.sleep(0.01)  # why: the server is down between a kill and its restart
                    continue
                with self._lock:
                    if 200 <= r.status_code < 300:
                        self.acked[body] = r.json()["id"]
                    else:
                        self.refused += 1


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def test_fifty_kill_9_during_writes_lose_no_acknowledged_write(procs, settings, tmp_path):
    if not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("SQLite durability: runs in the SQLite pass")
    path = Path(settings.resolved_database_url.split("///", 1)[1])
    rt = build_runtime(settings, migrate=False, queue_url="memory://")
    try:
        member = Factory(rt).member(Factory(rt).org(plan="pro"), "member")
        with db.transaction(rt.factory) as s:
            iid = incidents.create(session=s, actor=member.actor, now=rt.clock.now(),
                                   data=IncidentCreate(title="Disk full", services=["api"])).id
    finally:
        rt.close()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = blametrail_env(data_dir=settings.data_dir, database_url=settings.resolved_database_url,
                         sweep_interval_seconds=0.5)
    server = procs.fork_server("serve", "serve", "--port", str(port), env=env)
    rng = random.Random(7)
    statuses = []
    with Writers(base, member.headers, iid) as writers:
        for kill in range(KILLS):
            before = writers.acks()
            pid = server.fork()
            # the new server has taken at least one write: the kill lands while it is busy writing
            wait_until(lambda: writers.acks() > before or server.exit_status(pid) is not None,
                       what=f"server #{kill + 1} to acknowledge a write", watch=[server.proc])
            assert server.exit_status(pid) is None, f"server #{kill + 1} stopped by itself"
            time.sleep(rng.uniform(0, 0.25))
            statuses.append(server.kill9(pid))
    assert statuses == [-9] * KILLS
    assert writers.cut > 0, "no request was ever cut by a kill"

    assert _integrity(path) == "ok"
    assert _integrity(settings.data_dir / "queue.db") == "ok"
    conn = sqlite3.connect(path)
    try:
        stored = dict(conn.execute("SELECT body, id FROM timeline_entry WHERE kind = 'update' AND incident_id = ?",
                                   (iid,)).fetchall())
    finally:
        conn.close()
    lost = {body: entry for body, entry in writers.acked.items() if stored.get(body) != entry}
    assert not lost, f"{len(lost)} acknowledged writes are missing, e.g. {sorted(lost)[:5]}"
    assert len(writers.acked) >= KILLS
