"""Benchmark: does posting an update cost more as the incident grows? And a draft of a very long incident.

Usage:
  python scripts/bench_updates.py                         # SQLite (a temporary file)
  python scripts/bench_updates.py --database-url sqlite --database-url postgresql+psycopg://postgres@127.0.0.1/bench
  options: --sizes 10,1000,10000 --posts 300 --deploys 500 --serve

For each database and each size: an incident that already holds `size` updates (written straight to the tables),
then one client posts `--posts` updates back to back through the real app (FastAPI, middleware, auth, the writing
transaction with its search-index rows) — printed as updates/s, with the largest size's rate against the smallest
(goal: within 20 %). Then the work the queue does for that incident: one live-summary rebuild, and, at the largest
size with `--deploys` deploys in its window, resolve → draft with the built-in engine. A PostgreSQL database is
emptied (DROP SCHEMA public CASCADE): use a dedicated one. The app runs in this process without workers, so the
rates are the request path's own; the queue's work is timed separately. With --serve, the same posts also go through
a real `blametrail serve` process on the same database (its embedded workers rebuilding the live summary as updates
arrive), over one keep-alive HTTP connection.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def _start_serve(url: str, tmp: str):
    """Start `blametrail serve` (embedded workers on, no monitor scheduler) on this database; return (process, port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
    env.update(BLAMETRAIL_DATABASE_URL=url, BLAMETRAIL_DATA_DIR=tmp, BLAMETRAIL_MONITOR_SCHEDULER="false",
               BLAMETRAIL_LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "blametrail.cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("blametrail serve did not start")


def _post_through(port: int, iid: int, headers: dict, posts: int) -> float:
    """Post `posts` updates back to back over one keep-alive connection; return updates/s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    send = {**headers, "Content-Type": "application/json"}
    for n in range(10 + posts):
        if n == 10:
            began = time.perf_counter()
        conn.request("POST", f"/api/v1/incidents/{iid}/updates", body=json.dumps({"body": f"Served {n}"}), headers=send)
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status
    conn.close()
    return posts / (time.perf_counter() - began)


def run(url: str, tmp: str, sizes: list[int], posts: int, deploys: int, serve: bool = False) -> None:
    from sqlalchemy import insert, text
    from starlette.testclient import TestClient

    from blametrail import db
    from blametrail.app import create_app
    from blametrail.deploys.models import Deploy
    from blametrail.engines.builtin import BuiltinEngine
    from blametrail.incidents.models import Incident, TimelineEntry
    from blametrail.jobs.generation import run_generation
    from blametrail.jobs.summary import run_refresh
    from blametrail.orgs import service as orgs
    from blametrail.postmortems.models import Postmortem
    from blametrail.runtime import build_runtime
    from blametrail.settings import Settings
    from blametrail.summaries import service as summaries

    settings = Settings(data_dir=Path(tmp), database_url=url, queue_url="memory://", embedded_workers=0,
                        monitor_scheduler=False, _env_file=None)
    if url.startswith("postgresql"):
        engine = db.make_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    rt = build_runtime(settings)
    app = create_app(settings, runtime=rt, background=False)
    name = rt.engine.dialect.name
    now = datetime.now(UTC)
    with db.transaction(rt.factory) as s:
        org = orgs.create_org(session=s, slug="bench", name="Bench", plan="pro", now=now)
        member = orgs.create_user(session=s, email="oncall@bench.test", org=org, role="owner", password=None, now=now)
        _, raw = orgs.create_token(session=s, membership=member, name="bench", now=now)
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {raw}"}
    rates, served = {}, {}
    server = _start_serve(url, tmp) if serve else None
    for size in sizes:
        started = now - timedelta(hours=6)
        iid = client.post("/api/v1/incidents", headers=headers, json={
            "title": f"Checkout errors ({size} updates)", "services": ["checkout"],
            "started_at": started.isoformat()}).json()["id"]
        with db.transaction(rt.factory) as s:
            rows = [{"org_id": org.id, "incident_id": iid, "kind": "update", "at": started + timedelta(seconds=i),
                     "body": f"Update {i}: restarted a checkout worker, pool at {i % 50} connections", "author":
                     "oncall@bench.test", "created_at": started} for i in range(size)]
            for k in range(0, len(rows), 5000):
                s.execute(insert(TimelineEntry), rows[k:k + 5000])
        for _ in range(10):  # warm up
            client.post(f"/api/v1/incidents/{iid}/updates", headers=headers, json={"body": "warming up"})
        began = time.perf_counter()
        for n in range(posts):
            r = client.post(f"/api/v1/incidents/{iid}/updates", headers=headers, json={"body": f"Post {n}"})
            assert r.status_code == 201, r.text
        rates[size] = posts / (time.perf_counter() - began)
        if server is not None:
            served[size] = _post_through(server[1], iid, headers, posts)
        with db.transaction(rt.factory) as s:
            summaries.request_refresh(session=s, incident=s.get(Incident, iid), now=datetime.now(UTC))
        began = time.perf_counter()
        run_refresh(factory=rt.factory, incident_id=iid, clock=lambda: datetime.now(UTC), lookback_minutes=120,
                    choose_engine=lambda s, o: None, later=lambda i, d: None)
        rebuild = (time.perf_counter() - began) * 1000
        through = f"; through `blametrail serve` with its workers {served[size]:6.1f} updates/s" if served else ""
        print(f"[{name}] {size:>6} existing updates: {rates[size]:6.1f} updates/s posted in process{through}; "
              f"live summary rebuild {rebuild:7.0f} ms")
    low, high = min(sizes), max(sizes)
    print(f"[{name}] rate at {high:,} vs {low:,}: {rates[high] / rates[low]:.2f}× in process"
          + (f", {served[high] / served[low]:.2f}× through serve" if served else "") + " (goal: within 20 %)")
    if server is not None:
        server[0].terminate()
        server[0].wait(timeout=60)

    with db.transaction(rt.factory) as s:
        s.execute(insert(Deploy), [{"org_id": org.id, "service": "checkout" if i % 2 else f"svc-{i % 40}",
                                    "environment": "production", "version": f"v1.{i}",
                                    "deployed_at": started - timedelta(minutes=100) + timedelta(seconds=20 * i),
                                    "created_at": now} for i in range(deploys)])
    began = time.perf_counter()
    assert client.post(f"/api/v1/incidents/{iid}/resolve", headers=headers).status_code == 200
    with db.transaction(rt.factory) as s:
        pm_id = s.query(Postmortem.id).filter(Postmortem.incident_id == iid).scalar()
    outcome = run_generation(factory=rt.factory, pm_id=pm_id, choose_engine=lambda s, o: BuiltinEngine(),
                             clock=lambda: datetime.now(UTC), lookback_minutes=120)
    print(f"[{name}] resolve → draft ({outcome}) with the built-in engine at {high + posts + 10:,} updates and "
          f"{deploys} deploys: {time.perf_counter() - began:.2f} s (goal: under 5 s)")
    rt.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", action="append", default=None)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--deploys", type=int, default=500)
    parser.add_argument("--serve", action="store_true",
                        help="also post through a running `blametrail serve` with its embedded workers")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    for url in args.database_url or ["sqlite"]:
        with tempfile.TemporaryDirectory(prefix="bench-updates-") as tmp:
            run(f"sqlite:///{tmp}/bench.db" if url == "sqlite" else url, tmp, sizes, args.posts, args.deploys,
                serve=args.serve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
