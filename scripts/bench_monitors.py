"""Benchmark: HTTP monitors on schedule — checks made against checks due, for hundreds to thousands of monitors.

Usage:
  python scripts/bench_monitors.py                       # SQLite: one `blametrail serve` (embedded scheduler)
  python scripts/bench_monitors.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench --schedulers 2
  options: --counts 300,1000,3000 --interval 10 --warmup 15 --window 40 --schedulers N --src OTHER/src
           --profile-dir DIR (py-spy on each scheduler process; summarise with scripts/profile_summary.py)

For each count: an emptied database (a PostgreSQL one is emptied with DROP SCHEMA public CASCADE: use a dedicated
one) with one organization and that many monitors (interval --interval s, timeout 5 s, first checks spread over one
interval) that all check a local HTTP target — its own process, asyncio, answering `200 ok` and closing the
connection, the way a site answers a monitor that sends no keep-alive. Then the schedulers: on SQLite one
`blametrail serve` (the default layout: web, embedded workers and the scheduler in one process); with --schedulers N
(PostgreSQL), N `blametrail scheduler` processes sharing the work through the lease.

After --warmup seconds, for --window seconds: checks made (results stored with checked_at in the window) against
checks due (monitors × window / interval), the share on time (a check at most interval + 2 s after the monitor's
previous one), checks per second per scheduler process, the CPU each scheduler process used, the scheduling lag
(`monitors.schedule_lag`, read every second: the most overdue check's wait) and the requests the target saw.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

ON_TIME_SLACK = 2.0  # seconds past the interval a check may come and still count as on time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the target site (its own process) -------------------------------------------------------------------------

def target_main(port: int, hits) -> None:
    """Answer every request with 200 "ok" and close the connection; count requests into `hits` (a shared int)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # read the request head
                line = await reader.readline()
                if not line or line in (b"\r\n", b"\n"):
                    break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            with hits.get_lock():
                hits.value += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


# --- setup and reading the results (this process, through the services) ------------------------------------------

def _settings(database_url: str, data_dir: Path):
    from blametrail.settings import Settings

    return Settings(_env_file=None, database_url=database_url, data_dir=data_dir, embedded_workers=0,
                    monitor_scheduler=False)


def prepare(database_url: str, data_dir: Path, count: int, interval: int, target: str) -> None:
    """Empty the database, migrate it, and add an organization with `count` monitors of `target`."""
    from sqlalchemy import text, update

    from blametrail import db
    from blametrail.clock import SystemClock
    from blametrail.monitors import service as monitors
    from blametrail.monitors.models import Monitor
    from blametrail.monitors.schemas import MonitorCreate
    from blametrail.orgs import service as orgs

    settings = _settings(database_url, data_dir)
    engine = db.make_engine(settings)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.migrate(engine)
    factory = db.make_sessionmaker(engine)
    now = SystemClock().now()
    with db.transaction(factory) as s:
        org = orgs.create_org(session=s, slug="bench", name="Bench", plan="pro", now=now)
        actor = orgs.actor_for(orgs.create_user(session=s, email="bench@bench.test", org=org, role="owner",
                                                password=None, now=now))
        for i in range(count):
            monitors.create(session=s, actor=actor, now=now, data=MonitorCreate(
                name=f"site {i:05d}", url=f"{target}/health/{i}", interval_seconds=interval, timeout_seconds=5))
    start = now + timedelta(seconds=5)
    with db.transaction(factory) as s:  # the first checks spread evenly over one interval
        for i in range(count):
            s.execute(update(Monitor).where(Monitor.name == f"site {i:05d}")
                      .values(next_check_at=start + timedelta(seconds=interval * i / count)))
    engine.dispose()


def results(database_url: str, data_dir: Path, since, until, interval: int) -> dict:
    """Return checks made in [since, until) and how many were on time."""
    from sqlalchemy import select

    from blametrail import db
    from blametrail.clock import as_utc
    from blametrail.monitors.models import CheckResult

    engine = db.make_engine(_settings(database_url, data_dir))
    factory = db.make_sessionmaker(engine)
    with db.transaction(factory) as s:
        rows = s.execute(select(CheckResult.monitor_id, CheckResult.checked_at, CheckResult.ok)
                         .where(CheckResult.checked_at >= since - timedelta(seconds=3 * interval),
                                CheckResult.checked_at < until)
                         .order_by(CheckResult.monitor_id, CheckResult.checked_at)).all()
    engine.dispose()
    made = on_time = failed = 0
    previous: dict[int, object] = {}
    for monitor_id, at, ok in rows:
        at = as_utc(at)
        before = previous.get(monitor_id)
        previous[monitor_id] = at
        if at < since:
            continue
        made += 1
        failed += 0 if ok else 1
        if before is not None and (at - before).total_seconds() <= interval + ON_TIME_SLACK:
            on_time += 1
    return {"made": made, "on_time": on_time, "failed": failed}


def lag_now(factory) -> dict:
    from blametrail import db
    from blametrail.clock import SystemClock
    from blametrail.monitors import service as monitors

    with db.transaction(factory) as s:
        return monitors.schedule_lag(session=s, now=SystemClock().now())


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profile(directory: str | None, procs: list[subprocess.Popen], seconds: float, label: str) -> list:
    """Start py-spy on each scheduler process for the window (collapsed stacks into <dir>/<label>-<i>.txt)."""
    tool = shutil.which("py-spy") if directory else None
    if directory and tool is None:
        print("bench_monitors: --profile-dir given but py-spy is not on PATH; not profiling", file=sys.stderr)
    if tool is None:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([tool, "record", "--pid", str(p.pid), "--duration", str(max(1, int(seconds))), "--rate",
                              "100", "--format", "raw", "--nonblocking", "--output", f"{directory}/{label}-{i}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i, p in enumerate(procs)]


# --- one run -------------------------------------------------------------------------------------------------------

def run(database_url: str, count: int, args) -> dict:
    from blametrail import db
    from blametrail.clock import SystemClock

    data_dir = Path(tempfile.mkdtemp(prefix="bt-bench-monitors-"))
    url = f"sqlite:///{data_dir / 'blametrail.db'}" if database_url == "sqlite" else database_url
    ctx = multiprocessing.get_context("spawn")
    hits = ctx.Value("l", 0)
    target_port = _free_port()
    target = ctx.Process(target=target_main, args=(target_port, hits), daemon=True)
    target.start()
    prepare(url, data_dir, count, args.interval, f"http://127.0.0.1:{target_port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
    env.update(BLAMETRAIL_DATABASE_URL=url, BLAMETRAIL_DATA_DIR=str(data_dir), BLAMETRAIL_LOG_LEVEL="WARNING",
               BLAMETRAIL_SECRET_KEY=secrets.token_urlsafe(32), BLAMETRAIL_DEV_MODE="false",
               BLAMETRAIL_COOKIE_SECURE="false", BLAMETRAIL_QUEUE_URL="memory://",
               PYTHONPATH=os.pathsep.join(filter(None, [args.src or str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    if args.schedulers:
        env.update(BLAMETRAIL_MONITOR_SCHEDULER="false")
        argvs = [["scheduler"] for _ in range(args.schedulers)]
        layout = f"{args.schedulers} × blametrail scheduler"
    else:
        env.update(BLAMETRAIL_MONITOR_SCHEDULER="true")
        argvs = [["serve", "--host", "127.0.0.1", "--port", str(_free_port())]]
        layout = "1 × blametrail serve"
    procs = [subprocess.Popen([sys.executable, "-m", "blametrail.cli", *argv], env=env,
                              stdout=(data_dir / f"p{i}.log").open("w"), stderr=subprocess.STDOUT)
             for i, argv in enumerate(argvs)]
    engine = db.make_engine(_settings(url, data_dir))
    factory = db.make_sessionmaker(engine)
    try:
        time.sleep(args.warmup)
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"a scheduler exited: {(data_dir / 'p0.log').read_text()[-2000:]}")
        since, cpu0, hits0 = SystemClock().now(), [_cpu_seconds(p.pid) for p in procs], hits.value
        profilers = _profile(args.profile_dir, procs, args.window, f"{'sqlite' if url.startswith('sqlite') else 'pg'}-{count}")
        lags = []
        deadline = time.monotonic() + args.window
        while time.monotonic() < deadline:
            lags.append(lag_now(factory)["lag_seconds"])
            time.sleep(1.0)
        until, cpu1, hits1 = SystemClock().now(), [_cpu_seconds(p.pid) for p in procs], hits.value
        for profiler in profilers:
            profiler.wait(timeout=60)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=70)
            except subprocess.TimeoutExpired:
                p.kill()
        target.terminate()
        engine.dispose()
    window = (until - since).total_seconds()
    got = results(url, data_dir, since, until, args.interval)
    due = count * window / args.interval
    return {"database": "sqlite" if url.startswith("sqlite") else "postgresql", "monitors": count, "layout": layout,
            "due": due, **got, "made_share": got["made"] / due, "on_time_share": got["on_time"] / due,
            "checks_per_s_per_process": got["made"] / window / len(procs),
            "cpu_per_process": [round(b - a, 1) for a, b in zip(cpu0, cpu1, strict=True)], "window": window,
            "lag_p50": statistics.median(lags) if lags else 0.0, "lag_max": max(lags, default=0.0),
            "target_hits": hits1 - hits0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default="sqlite", help="'sqlite' (a temporary file) or a PostgreSQL URL")
    p.add_argument("--counts", default="300,1000,3000")
    p.add_argument("--interval", type=int, default=10)
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--window", type=float, default=40.0)
    p.add_argument("--schedulers", type=int, default=0,
                   help="run N `blametrail scheduler` processes instead of one `blametrail serve`")
    p.add_argument("--profile-dir", default=None, help="profile each scheduler process with py-spy during the window")
    p.add_argument("--src", default=None,
                   help="run the schedulers from this source tree instead (an earlier commit's `src`, to compare)")
    args = p.parse_args(argv)
    rows = [run(args.database_url, int(n), args) for n in args.counts.split(",")]
    print(f"\n{args.src or 'this tree'}: HTTP monitors at a {args.interval} s interval, {args.window:g} s measured after {args.warmup:g} s, "
          f"{os.cpu_count()} CPUs; on time = at most interval + {ON_TIME_SLACK:g} s after the previous check")
    header = (f"{'database':<10} {'layout':<24} {'monitors':>8} {'due':>7} {'made':>7} {'made %':>7} {'on time %':>9} "
              f"{'checks/s/proc':>13} {'CPU s/proc':>12} {'lag p50':>7} {'lag max':>7} {'failed':>6} {'hits':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['database']:<10} {r['layout']:<24} {r['monitors']:>8} {r['due']:>7.0f} {r['made']:>7} "
              f"{100 * r['made_share']:>6.1f}% {100 * r['on_time_share']:>8.1f}% {r['checks_per_s_per_process']:>13.1f} "
              f"{'/'.join(str(c) for c in r['cpu_per_process']):>12} {r['lag_p50']:>7.1f} {r['lag_max']:>7.1f} "
              f"{r['failed']:>6} {r['target_hits']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
