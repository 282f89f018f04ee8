"""PostgreSQL restarts twice in an alert storm: senders get 5xx and retry; every alert answered 2xx is stored once."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import create_engine, text

from blametrail.runtime import build_runtime
from blametrail.settings import Settings
from tests.factories import Factory
from tests.faults.support import blametrail_env, start_server, wait_until

pytestmark = pytest.mark.slow
SENDERS = 16
DELIVERIES = 15  # per sender
ALERTS = 2  # per delivery
SERVICES = ("checkout", "payments", "search", "auth")


class Storm:
    """Senders posting generic alert deliveries, each retried on 5xx or a broken connection until it gets a 2xx."""

    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret
        self.accepted: list[str] = []  # fingerprints of alerts in deliveries answered 2xx
        self.deliveries = 0  # deliveries answered 2xx
        self.server_errors = 0
        self.broken = 0  # no answer at all
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send_all, args=(n,), daemon=True) for n in range(SENDERS)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _send_all(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(headers={"Authorization": f"Bearer {self.secret}"}, timeout=30) as client:
            for d in range(DELIVERIES):
                fingerprints = [f"s{n}-d{d}-a{a}" for a in range(ALERTS)]
                body = {"alerts": [{"name": "HighErrorRate", "status": "firing", "fingerprint": fp,
                                    "service": rng.choice(SERVICES), "severity": "SEV-2",
                                    "summary": f"5xx above 5% ({fp})", "starts_at": "2026-11-26T09:30:00Z"}
                                   for fp in fingerprints]}
                if not self._deliver(client, body):
                    return
                with self._lock:
                    self.accepted.extend(fingerprints)
                    self.deliveries += 1

    def _deliver(self, client: httpx.Client, body: dict) -> bool:
        """Send until a 2xx; a sender retries forever on 5xx and broken connections, as Alertmanager does."""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                r = client.post(self.url, json=body)
            except httpx.TransportError:
                with self._lock:
                    self.broken += 1
                time.sleep(0.1)
                continue
            if 200 <= r.status_code < 300:
                return True
            with self._lock:
                if r.status_code >= 500:
                    self.server_errors += 1
                else:
                    self.unexpected.append(f"{r.status_code} {r.text[:300]}")
                    return False
            time.sleep(0.1)
        with self._lock:
            self.unexpected.append("gave up after 240 s of retries")
        return False


def test_postgresql_restarts_during_an_alert_storm_lose_no_accepted_alert(procs, private_pg, tmp_path):
    procs.extra_logs.append(("postgres", private_pg.log_path))
    url = private_pg.create_database(f"storm_{uuid.uuid4().hex[:8]}")
    env = blametrail_env(data_dir=tmp_path / "data", database_url=url, embedded_workers=1, monitor_scheduler="false")
    base, server = start_server(procs, env)  # migrates the empty database

    rt = build_runtime(Settings(database_url=url, data_dir=tmp_path / "data", _env_file=None), migrate=False,
                       queue_url="memory://")
    try:
        owner = Factory(rt).member(Factory(rt).org(plan="pro"), "owner")
    finally:
        rt.close()
    hook = httpx.post(f"{base}/api/v1/webhooks", headers=owner.headers, timeout=30,
                      json={"kind": "generic_alert", "name": "storm", "open_incidents": True}).json()

    storm = Storm(f"{base}/webhooks/alerts/{hook['url'].rsplit('/', 1)[1]}", hook["secret"])
    total = SENDERS * DELIVERIES
    storm.start()
    wait_until(lambda: storm.deliveries >= total // 4, what="a quarter of the storm", timeout=240, watch=[server])
    private_pg.restart("fast")
    restarted_at = storm.deliveries
    wait_until(lambda: storm.deliveries >= restarted_at + total // 4, what="the storm to go on after a restart",
               timeout=240, watch=[server])
    private_pg.restart("immediate")  # no clean shutdown: recovery from the WAL
    assert storm.join(timeout=300), "senders still sending"

    print(f"storm: {storm.deliveries} deliveries accepted, {storm.server_errors} answered 5xx, {storm.broken} cut")
    assert storm.unexpected == []
    assert storm.deliveries == total
    assert storm.server_errors + storm.broken > 0, "the restarts never reached a sender"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = Counter(dict(conn.execute(text("SELECT fingerprint, count(*) FROM alert GROUP BY fingerprint"))
                                  .all()))
            deliveries = conn.execute(text("SELECT count(*) FROM webhook_delivery")).scalar()
    finally:
        engine.dispose()
    assert len(storm.accepted) == total * ALERTS
    missing = [fp for fp in storm.accepted if stored[fp] == 0]
    doubled = [fp for fp, n in stored.items() if n > 1]
    assert not missing and not doubled, f"missing {missing[:5]} ({len(missing)}), doubled {doubled[:5]}"
    assert set(stored) == set(storm.accepted) and deliveries == total
    assert server.alive()
