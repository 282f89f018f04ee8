"""Benchmark: alert ingestion through a running BlameTrail against the stack's ceiling (bare FastAPI, one INSERT).

Usage:
  python scripts/bench_alerts.py                                  # SQLite (a temporary file)
  python scripts/bench_alerts.py --database-url sqlite --database-url postgresql+psycopg://user@host/bench
  options: --requests 10000 --concurrency 16 --warmup 300 --services 50 --profile-dir DIR

For each database, one uvicorn server (1 worker, a separate process) runs BlameTrail, and the client posts
`--requests` Alertmanager deliveries of one alert each (distinct fingerprints, spread over `--services` services,
so each opens or joins an incident and adds a timeline entry) to /webhooks/alertmanager/<uid>. Then, in the same
run, a second server — a bare FastAPI app whose one sync endpoint reads the body and does one INSERT into a one-table
schema on the same database through the same engine settings — takes the same load: the ceiling of
FastAPI + uvicorn + SQLAlchemy + that database on this machine. Use a dedicated PostgreSQL database: the script
migrates it, adds an organization and webhook, and creates and drops its own `bench_ceiling_insert` table.
Prints throughput, p50/p99 latency (client side), our/ceiling ratio and BlameTrail's SQL statements per delivery
(counted in the server) per database. With --profile-dir and py-spy on PATH, the BlameTrail server is profiled
during the measured load (`<dir>/<database>.txt`, collapsed stacks; summarise with scripts/profile_summary.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fastapi import Depends, FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

CEILING_TABLE = "bench_ceiling_insert"


# --- the two servers (each runs in its own process) ---------------------------------------------------------------

def _settings(database_url: str, data_dir: str):
    from blametrail.settings import Settings

    return Settings(data_dir=Path(data_dir), database_url=database_url, embedded_workers=0, monitor_scheduler=False,
                    log_level="WARNING", _env_file=None)


def ceiling_app(database_url: str, data_dir: str):
    """Return a bare FastAPI app: read the body, one INSERT, commit — nothing else."""
    from sqlalchemy import text

    from blametrail import db

    engine = db.make_engine(_settings(database_url, data_dir))
    app = FastAPI()
    insert = text(f"INSERT INTO {CEILING_TABLE} (received_at, body) VALUES (CURRENT_TIMESTAMP, :body)")

    async def read(request: Request) -> bytes:  # why: read on the event loop, as BlameTrail's receivers do
        return await request.body()

    @app.post("/ingest")
    def ingest(body: bytes = Depends(read)):  # noqa: B008 (a local dependency)
        with engine.begin() as conn:
            conn.execute(insert, {"body": body.decode()})
        return {"status": "ok"}

    return app


def serve(target: str, database_url: str, data_dir: str, port: int) -> None:
    import uvicorn

    if target == "blametrail":
        from sqlalchemy import event

        from blametrail.app import create_app
        from blametrail.runtime import build_runtime

        settings = _settings(database_url, data_dir)
        rt = build_runtime(settings, migrate=False)
        app = create_app(settings, runtime=rt, background=False)
        statements = [0]

        @event.listens_for(rt.engine, "before_cursor_execute")
        def count(*_args):
            statements[0] += 1

        app.app.add_api_route("/bench/statements", lambda: {"statements": statements[0]}, methods=["GET"])
    else:
        app = ceiling_app(database_url, data_dir)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False, backlog=4096)


# --- setup ---------------------------------------------------------------------------------------------------------

def prepare(database_url: str, data_dir: str) -> tuple[str, str, int]:
    """Migrate, create an organization and an Alertmanager webhook and the ceiling table; return (uid, secret, org)."""
    from sqlalchemy import text

    from blametrail import db
    from blametrail.clock import SystemClock
    from blametrail.crypto import SecretBox
    from blametrail.orgs import service as orgs
    from blametrail.webhooks import service as webhooks

    settings = _settings(database_url, data_dir)
    engine = db.make_engine(settings)
    db.migrate(engine)
    factory = db.make_sessionmaker(engine)
    now = SystemClock().now()
    slug = f"bench-{int(time.time() * 1000) % 10**10}"
    with db.transaction(factory) as s:
        org = orgs.create_org(session=s, slug=slug, name="Bench", plan="pro", now=now)
        m = orgs.create_user(session=s, email=f"bench@{slug}.test", org=org, role="owner", password=None, now=now)
        hook, secret = webhooks.create(session=s, actor=orgs.actor_for(m), box=SecretBox(settings.effective_secret_key),
                                       kind="alertmanager", name="bench", now=now, default_severity="SEV-3")
        uid, org_id = hook.uid, org.id
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {CEILING_TABLE}"))
        key = "INTEGER PRIMARY KEY AUTOINCREMENT" if engine.dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
        conn.execute(text(f"CREATE TABLE {CEILING_TABLE} (id {key}, received_at TIMESTAMP NOT NULL, body TEXT NOT NULL)"))
    engine.dispose()
    return uid, secret, org_id


def verify(database_url: str, data_dir: str, org_id: int) -> dict:
    """Return stored row counts, and drop the ceiling table."""
    from sqlalchemy import text

    from blametrail import db

    engine = db.make_engine(_settings(database_url, data_dir))
    with engine.begin() as conn:
        counts = {
            "alerts": conn.execute(text("SELECT count(*) FROM alert WHERE org_id = :o"), {"o": org_id}).scalar(),
            "incidents": conn.execute(text("SELECT count(*) FROM incident WHERE org_id = :o"), {"o": org_id}).scalar(),
            "timeline": conn.execute(text("SELECT count(*) FROM timeline_entry WHERE org_id = :o"), {"o": org_id}).scalar(),
            "ceiling_rows": conn.execute(text(f"SELECT count(*) FROM {CEILING_TABLE}")).scalar(),
        }
        conn.execute(text(f"DROP TABLE {CEILING_TABLE}"))
    engine.dispose()
    return counts


# --- load ------------------------------------------------------------------------------------------------------------

def delivery(i: int, services: int, run: str) -> bytes:
    """Return one Alertmanager v4 delivery carrying one firing alert with a distinct fingerprint."""
    service = f"svc-{i % services}"
    alert = {"status": "firing",
             "labels": {"alertname": f"BenchAlert{i % 20}", "service": service, "instance": f"10.0.{i % 250}.1:9100",
                        "severity": "warning", "bench": run},
             "annotations": {"summary": f"bench alert {i} on {service}"},
             "startsAt": "2026-11-26T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus:9090/graph?g0.expr=bench", "fingerprint": f"{run}-{i:08d}"}
    return json.dumps({"version": "4", "groupKey": f"{{}}:{{alertname=\"BenchAlert{i % 20}\"}}", "truncatedAlerts": 0,
                       "status": "firing", "receiver": "blametrail", "groupLabels": {}, "commonLabels": {},
                       "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
                       "alerts": [alert]}).encode()


def load(port: int, path: str, headers: dict, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """Post every body with `concurrency` keep-alive connections; return (wall seconds, latencies ms, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    next_index = [0]

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(bodies):
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=bodies[i], headers={**headers, "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append((time.perf_counter() - t0) * 1000)
            if not ok:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, errors[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(target: str, database_url: str, data_dir: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", target, "--database-url", database_url,
                             "--data-dir", data_dir, "--port", str(port)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target} server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{target} server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _statements(port: int) -> int:
    """Return how many SQL statements the BlameTrail server has run so far."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/bench/statements")
        return json.loads(conn.getresponse().read())["statements"]
    finally:
        conn.close()


def _profile(directory: str | None, pid: int, label: str) -> subprocess.Popen | None:
    """Start py-spy on the server (collapsed stacks into <directory>/<label>.txt), or None."""
    tool = shutil.which("py-spy") if directory else None
    if directory and tool is None:
        print("bench_alerts: --profile-dir given but py-spy is not on PATH; not profiling", file=sys.stderr)
    if tool is None:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([tool, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking",
                             "--output", str(Path(directory) / f"{label}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def bench_database(url_arg: str, args) -> list[dict]:
    data_dir = tempfile.mkdtemp(prefix="bt-bench-alerts-")
    database_url = f"sqlite:///{Path(data_dir) / 'blametrail.db'}" if url_arg == "sqlite" else url_arg
    label = "sqlite" if database_url.startswith("sqlite") else database_url.split("+", 1)[0].split(":", 1)[0]
    uid, secret, org_id = prepare(database_url, data_dir)
    run = f"r{int(time.time())}"
    warm = [delivery(i, args.services, run + "w") for i in range(args.warmup)]
    bodies = [delivery(i, args.services, run) for i in range(args.requests)]
    rows, per_delivery = [], float("nan")
    for target, path, headers in (("blametrail", f"/webhooks/alertmanager/{uid}", {"Authorization": f"Bearer {secret}"}),
                                  ("ceiling", "/ingest", {})):
        proc, port = start_server(target, database_url, data_dir)
        profiler = None
        try:
            load(port, path, headers, warm, args.concurrency)
            if target == "blametrail":
                profiler = _profile(args.profile_dir, proc.pid, label)
            before = _statements(port) if target == "blametrail" else 0
            wall, latencies, errors = load(port, path, headers, bodies, args.concurrency)
            if target == "blametrail":
                per_delivery = (_statements(port) - before) / len(bodies)
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes what it recorded and exits
                profiler.wait(timeout=60)
            stop_server(proc)
        rows.append({"database": label, "target": target, "requests": len(bodies), "errors": errors,
                     "throughput": len(bodies) / wall, "p50": statistics.median(latencies),
                     "p99": percentile(latencies, 99)})
    counts = verify(database_url, data_dir, org_id)
    rows[0]["ratio"] = rows[0]["throughput"] / rows[1]["throughput"]
    rows[1]["ratio"] = 1.0
    expected = args.requests + args.warmup
    rows[0]["check"] = f"{counts['alerts']} alerts, {counts['incidents']} incidents, {counts['timeline']} timeline rows, " \
                       f"{per_delivery:.1f} SQL statements per delivery"
    rows[1]["check"] = f"{counts['ceiling_rows']} rows"
    if counts["alerts"] != expected or counts["ceiling_rows"] != expected:
        print(f"WARNING: expected {expected} rows each, stored {counts}", file=sys.stderr)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", action="append", help="'sqlite' (a temporary file) or a SQLAlchemy URL; repeatable")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--profile-dir", default=None, help="profile the BlameTrail server with py-spy into this directory")
    p.add_argument("--serve", choices=("blametrail", "ceiling"), help=argparse.SUPPRESS)
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.database_url[0], args.data_dir, args.port)
        return 0
    rows = []
    for url in args.database_url or ["sqlite"]:
        rows.extend(bench_database(url, args))
    print(f"\n{args.requests} deliveries of 1 alert each, {args.concurrency} concurrent keep-alive clients, "
          f"1 uvicorn worker, {os.cpu_count()} CPUs")
    header = f"{'database':<10} {'target':<11} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} " \
             f"{'ours/ceiling':>12}  stored"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['database']:<10} {r['target']:<11} {r['requests']:>8} {r['errors']:>6} {r['throughput']:>8.0f} "
              f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['ratio']:>12.2f}  {r['check']}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
