"""Benchmark: people browsing while an Alertmanager alert storm runs, against real `blametrail serve` and
`blametrail worker` processes on PostgreSQL + Redis.

Usage:
  python scripts/bench_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
      --redis-url redis://127.0.0.1:6379/5
  options: --rate 1000 --duration 30 --users 100 --web-processes 2 --serve-workers 1 --workers 2
           --alerts-per-delivery 10 --services 20 --senders 64 --think 1.0 --baseline 5 --profile-dir DIR
           --summary-interval SECONDS

What it does, in order:
1. `blametrail db upgrade`, then --web-processes `blametrail serve` processes (each with --serve-workers uvicorn
   workers, BLAMETRAIL_EMBEDDED_WORKERS=0) on their own ports and --workers `blametrail worker` processes: the
   production layout of docs/production.md. Clients spread requests over the web processes round-robin, as a load
   balancer would.
2. Seeds a fresh organization (plan pro) with --users people, --incidents incidents (a quarter resolved, so they
   have drafted postmortems) and an Alertmanager webhook (open_incidents, auto_resolve), and waits until the
   workers have drafted the seeded postmortems.
3. --users people log in through the login form, then browse: incidents list, an incident's page, its Postmortem
   card, with --think seconds (±50%) between pages; 30% of detail views open the newest incident of the list
   (during the storm, a storm incident). Browsing starts --baseline seconds before the storm and ends with it.
4. The storm: --rate alert notifications per second for --duration seconds, sent as Alertmanager v4 deliveries of
   --alerts-per-delivery alerts each (one group: alertname + service), so deliveries/s = rate / alerts-per-delivery.
   Each group is delivered twice: firing, then resolved (5 s or more later, all within the storm), the way
   Alertmanager's send_resolved does; both count as alert notifications. Senders pace deliveries open-loop at their
   scheduled times (at most --senders in flight) and retry on 5xx, 429 and connection errors with backoff, up to
   60 s per delivery, as Alertmanager does.
5. After the storm: the queue drain time (storm end, i.e. the last acknowledgement, until the Redis queue is empty
   and no postmortem or live summary of the organization is queued or generating), then the loss check: every alert
   of every 2xx-acknowledged delivery must be stored, and stored resolved when its resolution was acknowledged.

The load generators run in two child processes on the same machine as the servers, PostgreSQL and Redis: on a small
machine they take a share of its cores, which the numbers include; the table says how much CPU each part used during
the storm (web, workers, this database's PostgreSQL backends, load generators, the whole machine). With
--profile-dir and py-spy on PATH, every web and worker process is profiled during the storm (collapsed stacks).
Use a dedicated database; each run adds a new organization and leaves it there. Prints a Markdown table; main()
returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import queue
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

PASSWORD = "bench-password-123"
RETRY_FOR_SECONDS = 60.0
RESOLVE_AFTER_SECONDS = 5.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=1000.0, help="alert notifications per second (default: 1000)")
    p.add_argument("--duration", type=float, default=30.0, help="storm length in seconds (default: 30)")
    p.add_argument("--users", type=int, default=100, help="people browsing (default: 100)")
    p.add_argument("--web-processes", type=int, default=2, help="`blametrail serve` processes (default: 2)")
    p.add_argument("--serve-workers", type=int, default=1, help="uvicorn workers per serve process (default: 1)")
    p.add_argument("--workers", type=int, default=2, help="`blametrail worker` processes (default: 2)")
    p.add_argument("--database-url", default=os.environ.get("BLAMETRAIL_BENCH_DATABASE_URL"),
                   help="PostgreSQL URL (default: $BLAMETRAIL_BENCH_DATABASE_URL)")
    p.add_argument("--redis-url", default=os.environ.get("BLAMETRAIL_BENCH_REDIS_URL"),
                   help="Redis URL for the queue (default: $BLAMETRAIL_BENCH_REDIS_URL)")
    p.add_argument("--alerts-per-delivery", type=int, default=10, help="alerts in one Alertmanager delivery (default: 10)")
    p.add_argument("--services", type=int, default=20, help="services the storm's alerts spread over (default: 20)")
    p.add_argument("--senders", type=int, default=64, help="deliveries in flight at most (default: 64)")
    p.add_argument("--incidents", type=int, default=40, help="incidents seeded before the storm (default: 40)")
    p.add_argument("--think", type=float, default=1.0, help="mean seconds between two pages of one person (default: 1)")
    p.add_argument("--baseline", type=float, default=5.0, help="seconds of browsing before the storm (default: 5)")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="give up waiting for the queue after (default: 300)")
    p.add_argument("--summary-interval", type=int, default=None,
                   help="BLAMETRAIL_SUMMARY_MIN_INTERVAL_SECONDS for the processes (default: the product's 30 s; the "
                        "queue drain includes the last debounced live-summary rebuild, so a short storm waits for it)")
    p.add_argument("--profile-dir", default=None,
                   help="record py-spy profiles (collapsed stacks) of every web and worker process during the storm")
    args = p.parse_args(argv)
    if not args.database_url or not args.redis_url:
        p.error("--database-url (PostgreSQL) and --redis-url are required")
    if args.rate <= 0 or args.duration <= 0 or args.users < 0 or args.alerts_per_delivery < 1:
        p.error("--rate and --duration must be positive, --users at least 0, --alerts-per-delivery at least 1")
    return args


# --- processes -------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The BlameTrail processes of one run: migrate, web processes, workers."""

    def __init__(self, args, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
        self.env.update(
            BLAMETRAIL_DATABASE_URL=args.database_url, BLAMETRAIL_QUEUE_URL=args.redis_url,
            BLAMETRAIL_SECRET_KEY=secrets.token_urlsafe(32), BLAMETRAIL_DEV_MODE="false",
            BLAMETRAIL_COOKIE_SECURE="false",  # plain HTTP on loopback here; TLS ends at the proxy in production
            BLAMETRAIL_EMBEDDED_WORKERS="0", BLAMETRAIL_MONITOR_SCHEDULER="false", BLAMETRAIL_LOG_LEVEL="WARNING",
            BLAMETRAIL_DATA_DIR=str(workdir / "data"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
        if args.summary_interval is not None:
            self.env["BLAMETRAIL_SUMMARY_MIN_INTERVAL_SECONDS"] = str(args.summary_interval)
        self.processes: dict[str, subprocess.Popen] = {}
        self.urls: list[str] = []

    def cli(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "blametrail.cli", *argv]

    def start(self) -> None:
        done = subprocess.run(self.cli("db", "upgrade"), env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"blametrail db upgrade failed: {done.stderr}")
        for i in range(self.args.web_processes):
            port = _free_port()
            self._spawn(f"web{i + 1}", "serve", "--host", "127.0.0.1", "--port", str(port),
                        "--workers", str(self.args.serve_workers))
            self.urls.append(f"http://127.0.0.1:{port}")
        for i in range(self.args.workers):
            self._spawn(f"worker{i + 1}", "worker")
        self._wait_healthy()

    def _spawn(self, name: str, *argv: str) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(self.cli(*argv), env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def _wait_healthy(self) -> None:
        import httpx

        deadline = time.monotonic() + 120
        for url in self.urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                self.check_alive()
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url} did not answer /healthz within 120 s{self.logs()}")
                time.sleep(0.2)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise SystemExit(f"processes exited: {dead}{self.logs()}")

    def logs(self) -> str:
        return "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- seeding and the database-side checks (in this process, through the services) --------------------------------

def _runtime(args, secret_key: str):
    from blametrail.runtime import build_runtime
    from blametrail.settings import Settings

    settings = Settings(_env_file=None, database_url=args.database_url, queue_url=args.redis_url, dev_mode=False,
                        secret_key=secret_key, embedded_workers=0, monitor_scheduler=False)
    return build_runtime(settings, migrate=False)


def seed(rt, args) -> dict:
    """Create the organization, its people, incidents and the Alertmanager webhook; return what the clients need."""
    from blametrail import db
    from blametrail.incidents import service as incidents
    from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
    from blametrail.orgs import service as orgs
    from blametrail.orgs.models import User
    from blametrail.postmortems import service as postmortems
    from blametrail.webhooks import service as webhooks

    now = rt.clock.now()
    slug = f"load-{int(time.time())}-{secrets.token_hex(2)}"
    emails = [f"person{i}@{slug}.test" for i in range(max(args.users, 1))]
    with db.transaction(rt.factory) as s:
        org = orgs.create_org(session=s, slug=slug, name="Load test", plan="pro", now=now)
        org.ai_enabled = True
        owner = orgs.create_user(session=s, email=emails[0], org=org, role="owner", password=PASSWORD, now=now)
        password_hash = owner.user.password_hash
        for email in emails[1:]:  # why: one argon2 hash for all; hashing 100 passwords would only slow the set-up
            m = orgs.create_user(session=s, email=email, org=org, role="member", password=None, now=now)
            s.get(User, m.user_id).password_hash = password_hash
        actor = orgs.actor_for(owner)
        hook, secret = webhooks.create(session=s, actor=actor, box=rt.secret_box, kind="alertmanager", name="storm",
                                       now=now, default_severity="SEV-3", open_incidents=True, auto_resolve=True)
        org_id, hook_id, uid = org.id, hook.id, hook.uid
    incident_ids = []
    for n in range(args.incidents):
        with db.transaction(rt.factory) as s:
            start = now - timedelta(hours=2, minutes=n)
            inc = incidents.create(session=s, actor=actor, now=now, data=IncidentCreate(
                title=f"Elevated errors on app-{n % 10} #{n}", severity="SEV-3", services=[f"app-{n % 10}"],
                started_at=start, description="Seeded by scripts/bench_load.py."))
            for m in range(4):
                incidents.add_update(session=s, actor=actor, incident=inc, now=now, data=UpdateCreate(
                    body=f"Update {m}: error rate {5 + m}% on app-{n % 10}; investigating the cache layer.",
                    at=start + timedelta(minutes=2 + 4 * m)))
            if n % 4 == 0:
                postmortems.resolve_incident(session=s, incident=inc, now=now, resolved_at=start + timedelta(minutes=30),
                                             by_label=actor.label, by_user_id=actor.user_id)
            incident_ids.append(inc.id)
    return {"org_id": org_id, "hook_id": hook_id, "uid": uid, "secret": secret, "emails": emails,
            "incident_ids": incident_ids}


def backlog(rt, org_id: int) -> dict:
    """Return the queue length and the organization's postmortems and summaries still waiting or running."""
    from sqlalchemy import text

    with rt.engine.connect() as conn:
        pms = conn.execute(text("SELECT count(*) FROM postmortem WHERE org_id = :o AND status IN ('queued', 'generating')"),
                           {"o": org_id}).scalar()
        summaries = conn.execute(text("SELECT count(*) FROM incident_summary WHERE org_id = :o AND status = 'queued'"),
                                 {"o": org_id}).scalar()
    return {"queue": rt.huey.pending_count(), "postmortems": pms, "summaries": summaries}


def wait_drained(rt, org_id: int, timeout: float, cluster: Cluster) -> tuple[float | None, dict]:
    """Poll until nothing is queued or running; return (seconds waited or None on timeout, the last backlog)."""
    start = time.time()
    while True:
        state = backlog(rt, org_id)
        if not any(state.values()):
            return time.time() - start, state
        if time.time() - start > timeout:
            return None, state
        cluster.check_alive()
        time.sleep(0.1)


def stored_alerts(rt, hook_id: int) -> dict[str, str]:
    from sqlalchemy import text

    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT fingerprint, status FROM alert WHERE webhook_id = :w"), {"w": hook_id})
        return {fp: status for fp, status in rows}


def storm_outcome(rt, org_id: int) -> dict:
    from sqlalchemy import text

    with rt.engine.connect() as conn:
        def one(sql: str) -> int:
            return conn.execute(text(sql), {"o": org_id}).scalar()

        return {
            "incidents_opened": one("SELECT count(*) FROM incident WHERE org_id = :o AND source = 'alert'"),
            "incidents_resolved": one("SELECT count(*) FROM incident WHERE org_id = :o AND source = 'alert' "
                                      "AND status = 'resolved'"),
            "postmortems_drafted": one("SELECT count(*) FROM postmortem p JOIN incident i ON i.id = p.incident_id "
                                       "WHERE p.org_id = :o AND i.source = 'alert' AND p.status = 'draft'"),
            "postmortems_failed": one("SELECT count(*) FROM postmortem p JOIN incident i ON i.id = p.incident_id "
                                      "WHERE p.org_id = :o AND i.source = 'alert' AND p.status = 'failed'"),
            "postmortems_skipped": one("SELECT count(*) FROM incident WHERE org_id = :o AND source = 'alert' "
                                       "AND postmortem_skip_reason IS NOT NULL"),
            "timeline_entries": one("SELECT count(*) FROM timeline_entry WHERE org_id = :o AND kind = 'alert'"),
        }


# --- the storm (child process) ---------------------------------------------------------------------------------------

def storm_schedule(rate: float, duration: float, per_delivery: int) -> list[tuple[float, int, str]]:
    """Return (offset seconds, group, 'firing'|'resolved') at a constant rate; every group fires, then resolves."""
    slots = max(2, 2 * round(rate * duration / per_delivery / 2))  # even: as many resolutions as firings
    spacing = per_delivery / rate
    hold = min(int(RESOLVE_AFTER_SECONDS / spacing), slots // 2)  # the first `hold` slots only fire
    pending: deque[int] = deque()
    plan, group, alternate = [], 0, False
    for j in range(slots):
        remaining = slots - j
        if pending and (remaining <= len(pending) or (j >= hold and alternate)):
            plan.append((j * spacing, pending.popleft(), "resolved"))
        else:
            plan.append((j * spacing, group, "firing"))
            pending.append(group)
            group += 1
        alternate = not alternate
    return plan


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fingerprints(run: str, group: int, per_delivery: int) -> list[str]:
    return [f"{run}-{group:06d}-{k:03d}" for k in range(per_delivery)]


def delivery_body(run: str, group: int, status: str, fired_at: float, resolved_at: float | None, per_delivery: int,
                  services: int) -> bytes:
    """Return one Alertmanager v4 delivery: one group (alertname + service) of `per_delivery` alerts."""
    name, service = f"Storm{group % 7}", f"storm-{group % services}"
    alerts = [{"status": status,
               "labels": {"alertname": name, "service": service, "instance": f"10.1.{group % 250}.{k}:9100",
                          "severity": "warning"},
               "annotations": {"summary": f"{name} on {service}: error ratio above 5%"},
               "startsAt": _iso(fired_at), "endsAt": _iso(resolved_at) if resolved_at else "0001-01-01T00:00:00Z",
               "generatorURL": "http://prometheus:9090/graph?g0.expr=storm", "fingerprint": fp}
              for k, fp in enumerate(fingerprints(run, group, per_delivery))]
    return json.dumps({"version": "4", "groupKey": f'{{}}:{{alertname="{name}",service="{service}"}}',
                       "truncatedAlerts": 0, "status": status, "receiver": "blametrail",
                       "groupLabels": {"alertname": name, "service": service},
                       "commonLabels": {"alertname": name, "service": service, "severity": "warning"},
                       "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts}).encode()


def storm_main(spec: dict, ready, go, out) -> None:
    ready.put("storm")
    spec["start_at"] = go.get()
    out.put(asyncio.run(_storm(spec)))


async def _storm(spec: dict) -> dict:
    import httpx

    plan = storm_schedule(spec["rate"], spec["duration"], spec["per_delivery"])
    t0 = spec["start_at"]
    fired: dict[int, float] = {}
    bodies = []
    for offset, group, status in plan:
        if status == "firing":
            fired[group] = t0 + offset
        bodies.append(delivery_body(spec["run"], group, status, fired[group], t0 + offset if status == "resolved" else None,
                                    spec["per_delivery"], spec["services"]))
    statuses: Counter = Counter()
    acked: list[int] = []
    answers: list[tuple[int, dict]] = []
    gave_up: list[int] = []
    latency: list[float] = []
    lateness: list[float] = []
    retries = 0
    last_ack = t0
    urls = [f"{u}/webhooks/alertmanager/{spec['uid']}" for u in spec["urls"]]
    headers = {"Authorization": f"Bearer {spec['secret']}", "Content-Type": "application/json"}
    due: asyncio.Queue = asyncio.Queue()
    limits = httpx.Limits(max_connections=spec["senders"], max_keepalive_connections=spec["senders"])

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def send(i: int) -> None:
            nonlocal retries, last_ack
            first = time.time()
            lateness.append(first - (t0 + plan[i][0]))
            attempt = 0
            while True:
                try:
                    response = await client.post(urls[(i + attempt) % len(urls)], content=bodies[i], headers=headers)
                    statuses[str(response.status_code)] += 1
                    code = response.status_code
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    code = None
                if code is not None and 200 <= code < 300:
                    acked.append(i)
                    answers.append((i, response.json()))
                    latency.append(time.time() - first)
                    last_ack = max(last_ack, time.time())
                    return
                if code is not None and code < 500 and code != 429:
                    gave_up.append(i)  # a 4xx other than 429 is not retried (Alertmanager does not either)
                    return
                if time.time() - first > RETRY_FOR_SECONDS:
                    gave_up.append(i)
                    return
                attempt += 1
                retries += 1
                await asyncio.sleep(min(0.25 * 2 ** attempt, 5.0) * random.uniform(0.5, 1.0))

        async def sender() -> None:
            while (i := await due.get()) is not None:
                await send(i)

        tasks = [asyncio.create_task(sender()) for _ in range(spec["senders"])]
        for i, (offset, _, _) in enumerate(plan):
            delay = t0 + offset - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(i)
        for _ in tasks:
            due.put_nowait(None)
        await asyncio.gather(*tasks)
    return {"plan": plan, "acked": acked, "answers": answers, "gave_up": gave_up, "statuses": dict(statuses), "latency": latency,
            "lateness": lateness, "retries": retries, "end": last_ack if acked else time.time()}


# --- the people (child process) ----------------------------------------------------------------------------------------

def browse_main(spec: dict, ready, go, stop, out) -> None:
    out.put(asyncio.run(_browse(spec, ready, go, stop)))


async def _browse(spec: dict, ready, go, stop) -> dict:
    import httpx

    urls, ids = spec["urls"], spec["incident_ids"]
    samples: list[tuple[str, float, float, str]] = []  # (page, started, seconds, status)
    logins: list[float] = []
    newest = re.compile(r'href="/incidents/(\d+)"')
    counter = iter(range(10**9))

    async def get(client, page: str, path: str) -> httpx.Response | None:
        url = urls[next(counter) % len(urls)] + path
        started = time.time()
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            samples.append((page, started, time.time() - started, type(exc).__name__))
            return None
        status = str(response.status_code)
        if response.status_code == 303 and "/login" in response.headers.get("location", ""):
            status = "303 to login"
        samples.append((page, started, time.time() - started, status))
        return response

    async def log_in(client, email: str, gate: asyncio.Semaphore) -> None:
        async with gate:  # why: a burst of 100 argon2 verifications would only measure the login
            started = time.time()
            await client.get(urls[0] + "/login")
            await client.post(urls[0] + "/login", data={"email": email, "password": PASSWORD,
                                                         "csrftoken": client.cookies.get("csrftoken", "")})
            logins.append(time.time() - started)

    async def person(client) -> None:
        await asyncio.sleep(random.uniform(0, spec["think"]))  # why: people do not click in lockstep
        while not stop.is_set():
            listing = await get(client, "incidents list", "/incidents")
            found = newest.search(listing.text) if listing is not None and listing.status_code == 200 else None
            pick_newest = found is not None and random.random() < 0.3
            incident = int(found.group(1)) if pick_newest else random.choice(ids)
            page = "incident page (storm incident)" if pick_newest else "incident page"
            await asyncio.sleep(random.uniform(0.5, 1.5) * spec["think"])
            await get(client, page, f"/incidents/{incident}")
            await get(client, "postmortem card", f"/incidents/{incident}/postmortem/card")
            await asyncio.sleep(random.uniform(0.5, 1.5) * spec["think"])

    clients = [httpx.AsyncClient(timeout=60, follow_redirects=False) for _ in spec["emails"]]
    try:
        gate = asyncio.Semaphore(8)
        await asyncio.gather(*(log_in(c, e, gate) for c, e in zip(clients, spec["emails"], strict=True)))
        ready.put("browse")
        storm_at = await asyncio.to_thread(go.get)
        await asyncio.sleep(max(0.0, storm_at - spec["baseline"] - time.time()))
        await asyncio.gather(*(person(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    return {"samples": samples, "logins": logins}


# --- the run -----------------------------------------------------------------------------------------------------------

def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Return the CPU seconds (user + system) used so far by these processes and their descendants, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], used[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
    wanted, found = set(pids), {}
    for pid in used:
        p = pid
        while p and p not in wanted:
            p = parents.get(p, 0)
        if p:
            found[pid] = used[pid]
    return found


def _machine_busy() -> tuple[float, float]:
    """Return (busy, total) CPU seconds of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def _postgres_backends(database_url: str) -> list[int]:
    """Return the pids of PostgreSQL backends connected to this database (a local server only)."""
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").replace("\0", " ").split()
        except OSError:
            continue
        if words[:1] == ["postgres:"] and name in words:
            found.append(int(cmdline.parent.name))
    return found


def _cpu_snapshot(cluster: Cluster, children) -> dict:
    groups = {"web": [p.pid for n, p in cluster.processes.items() if n.startswith("web")],
              "workers": [p.pid for n, p in cluster.processes.items() if n.startswith("worker")],
              "PostgreSQL backends of this database": _postgres_backends(cluster.args.database_url),
              "load generators": [c.pid for c in children]}
    snap = {name: _cpu_seconds(pids) for name, pids in groups.items()}
    snap["machine busy"], snap["machine total"] = _machine_busy()
    return snap


def _cpu_used(before: dict, after: dict) -> dict[str, float]:
    """Return CPU seconds used between two snapshots (processes that ended in between are not counted)."""
    used = {}
    for name, now in after.items():
        if isinstance(now, dict):
            used[name] = sum(max(0.0, t - before[name].get(pid, 0.0)) for pid, t in now.items())
        else:
            used[name] = now - before[name]
    return used


def _profile(args, cluster: Cluster, seconds: float) -> list[subprocess.Popen]:
    if not args.profile_dir:
        return []
    tool = shutil.which("py-spy")
    if tool is None:
        print("bench_load: --profile-dir given but py-spy is not on PATH; not profiling", file=sys.stderr)
        return []
    Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([tool, "record", "--pid", str(proc.pid), "--subprocesses", "--duration",
                              str(max(1, int(seconds))), "--rate", "50", "--format", "raw", "--nonblocking",
                              "--output", str(Path(args.profile_dir) / f"{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, proc in cluster.processes.items()]


def main(argv=None) -> dict:
    """Run the benchmark; print the table and return the numbers."""
    args = parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    cluster = Cluster(args, workdir)
    rt, children = None, []
    try:
        load_average = os.getloadavg()
        t_setup = time.time()
        cluster.start()
        started = time.time() - t_setup
        rt = _runtime(args, cluster.env["BLAMETRAIL_SECRET_KEY"])  # why: the webhook secret is stored encrypted
        seeded = seed(rt, args)
        seed_drain, _ = wait_drained(rt, seeded["org_id"], args.drain_timeout, cluster)
        setup_seconds = time.time() - t_setup

        run = secrets.token_hex(4)
        storm_spec = {"rate": args.rate, "duration": args.duration, "per_delivery": args.alerts_per_delivery,
                      "services": args.services, "senders": args.senders, "urls": cluster.urls, "uid": seeded["uid"],
                      "secret": seeded["secret"], "run": run}
        browse_spec = {"urls": cluster.urls, "emails": seeded["emails"][:args.users],
                       "incident_ids": seeded["incident_ids"] or [1], "think": args.think, "baseline": args.baseline}
        ready, gos, stop = ctx.Queue(), [], ctx.Event()
        storm_out, browse_out = ctx.Queue(), ctx.Queue()
        gos.append(ctx.Queue())
        children.append(ctx.Process(target=storm_main, args=(storm_spec, ready, gos[-1], storm_out), name="storm",
                                    daemon=True))
        if args.users:
            gos.append(ctx.Queue())
            children.append(ctx.Process(target=browse_main, args=(browse_spec, ready, gos[-1], stop, browse_out),
                                        name="browse", daemon=True))
        for child in children:
            child.start()
        t_login = time.time()
        waiting = len(children)
        while waiting:  # the storm has built its deliveries; the people have logged in
            try:
                ready.get(timeout=0.5)
                waiting -= 1
            except queue.Empty:
                if any(c.exitcode is not None for c in children) or time.time() - t_login > 600:
                    raise SystemExit("a load generator died or the logins took over 10 minutes") from None
        login_seconds = time.time() - t_login
        storm_at = time.time() + args.baseline + 0.5
        for go in gos:
            go.put(storm_at)
        while time.time() < storm_at:
            time.sleep(0.05)
        profilers = _profile(args, cluster, args.duration)
        cpu_before = _cpu_snapshot(cluster, children)
        storm = storm_out.get()
        cpu_after = _cpu_snapshot(cluster, children)
        stop.set()
        storm_end = storm["end"]
        drain, left = wait_drained(rt, seeded["org_id"], args.drain_timeout, cluster)
        drain_total = (time.time() - storm_end) if drain is not None else None
        browse = browse_out.get() if args.users else {"samples": [], "logins": []}
        for child in children:
            child.join()
        for p in profilers:
            p.wait(timeout=60)

        stored = stored_alerts(rt, seeded["hook_id"])
        lost, acked_alerts, acked_by_status = 0, 0, Counter()
        for i in storm["acked"]:
            _, group, status = storm["plan"][i]
            for fp in fingerprints(run, group, args.alerts_per_delivery):
                acked_alerts += 1
                acked_by_status[status] += 1
                if fp not in stored or (status == "resolved" and stored[fp] != "resolved"):
                    lost += 1
        outcome = storm_outcome(rt, seeded["org_id"])
        server_counts = Counter()
        for _, answer in storm["answers"]:
            server_counts.update({k: answer.get(k, 0) for k in ("created", "firing", "resolved", "unchanged")})
            server_counts[answer.get("status", "?")] += 1
        storm_seconds = storm_end - storm_at
        during = [s for s in browse["samples"] if storm_at <= s[1] < storm_end]
        before = [s for s in browse["samples"] if s[1] < storm_at]
        result = {
            "args": vars(args), "setup_seconds": setup_seconds, "start_seconds": started, "seed_drain_seconds": seed_drain,
            "deliveries_planned": len(storm["plan"]), "deliveries_acked": len(storm["acked"]),
            "deliveries_gave_up": len(storm["gave_up"]), "alerts_acked": acked_alerts,
            "alerts_acked_by_status": dict(acked_by_status), "alerts_lost": lost,
            "storm_seconds": storm_seconds, "alerts_per_second": acked_alerts / storm_seconds if storm_seconds else 0,
            "deliveries_per_second": len(storm["acked"]) / storm_seconds if storm_seconds else 0,
            "webhook_statuses": storm["statuses"], "webhook_retries": storm["retries"],
            "server_counts": dict(server_counts),
            "cpu_seconds": _cpu_used(cpu_before, cpu_after),
            "delivery_p50": _pct(storm["latency"], 50), "delivery_p99": _pct(storm["latency"], 99),
            "send_lateness_p99": _pct(storm["lateness"], 99),
            "drained": drain is not None, "drain_seconds": drain_total, "backlog_left": left,
            "pages": _page_stats(during), "pages_baseline": _page_stats(before),
            "page_statuses": dict(Counter(s[3] for s in browse["samples"])),
            "pages_per_second": len(during) / storm_seconds if storm_seconds else 0,
            "login_p50": _pct(browse["logins"], 50), "login_seconds": login_seconds, "outcome": outcome,
            "workdir": str(workdir), "load_average": load_average,
        }
        print(table(result))
        return result
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
        if rt is not None:
            rt.close()
        cluster.stop()


def _page_stats(samples) -> dict:
    by_page: dict[str, list[float]] = {}
    for page, _, seconds, status in samples:
        by_page.setdefault(page, []).append(seconds)
    everything = [s[2] for s in samples]
    stats = {page: {"n": len(v), "p50": _pct(v, 50), "p95": _pct(v, 95), "p99": _pct(v, 99)}
             for page, v in sorted(by_page.items())}
    stats["all pages"] = {"n": len(everything), "p50": _pct(everything, 50), "p95": _pct(everything, 95),
                          "p99": _pct(everything, 99)}
    return stats


def table(r: dict) -> str:
    """Return the result as a Markdown table."""
    a = r["args"]
    o = r["outcome"]
    per = a["alerts_per_delivery"]
    rows = [
        ("target", f"{a['rate']:,.0f} alert notifications/s ({a['rate'] / per:,.0f} deliveries/s of {per} alerts) "
                   f"for {a['duration']:g} s; {a['users']} people browsing; {a['web_processes']} serve process(es) × "
                   f"{a['serve_workers']} uvicorn worker(s); {a['workers']} `blametrail worker` processes; "
                   f"{os.cpu_count()} CPU cores shared with PostgreSQL, Redis and the load generators"),
        ("storm achieved", f"{r['alerts_per_second']:,.0f} alert notifications/s, {r['deliveries_per_second']:,.1f} "
                           f"deliveries/s over {r['storm_seconds']:.1f} s ({r['deliveries_acked']:,} of "
                           f"{r['deliveries_planned']:,} deliveries acknowledged; {r['alerts_acked']:,} alerts: "
                           f"{r['alerts_acked_by_status'].get('firing', 0):,} firing, "
                           f"{r['alerts_acked_by_status'].get('resolved', 0):,} resolved)"),
        ("webhook loss", f"**{r['alerts_lost']}** of {r['alerts_acked']:,} acknowledged alerts missing; "
                         f"{r['deliveries_gave_up']} deliveries given up after 60 s of retries"),
        ("webhook responses", ", ".join(f"{k}: {v:,}" for k, v in sorted(r["webhook_statuses"].items())) +
                              f" ({r['webhook_retries']:,} retries); the server's counts: " +
                              ", ".join(f"{k} {v:,}" for k, v in r["server_counts"].items())),
        ("delivery latency", f"p50 {_ms(r['delivery_p50'])}, p99 {_ms(r['delivery_p99'])} (first attempt to 2xx); "
                             f"sender lateness p99 {_ms(r['send_lateness_p99'])}"),
    ]
    for page, s in r["pages"].items():
        base = r["pages_baseline"].get(page)
        extra = f" (before the storm: p50 {_ms(base['p50'])}, p99 {_ms(base['p99'])})" if base else ""
        rows.append((f"page latency: {page}", f"p50 {_ms(s['p50'])}, p95 {_ms(s['p95'])}, **p99 {_ms(s['p99'])}** "
                                              f"({s['n']:,} requests during the storm){extra}"))
    rows += [
        ("CPU during the storm", ", ".join(f"{k} {v:,.0f} s" for k, v in r["cpu_seconds"].items()
                                           if not k.startswith("machine")) +
                                 f"; the whole machine was busy {r['cpu_seconds']['machine busy']:,.0f} of "
                                 f"{r['cpu_seconds']['machine total']:,.0f} CPU seconds (other processes included)"),
        ("pages", f"{r['pages_per_second']:,.1f} pages/s during the storm; statuses: " +
                  ", ".join(f"{k}: {v:,}" for k, v in sorted(r["page_statuses"].items()))),
        ("queue drain", (f"**{r['drain_seconds']:.1f} s** from the last acknowledgement until the queue was empty "
                         f"and no postmortem or summary was queued or generating") if r["drained"] else
                        f"**not drained** within {a['drain_timeout']:g} s; left: {r['backlog_left']}"),
        ("storm outcome", f"{o['incidents_opened']} incidents opened, {o['incidents_resolved']} resolved by their "
                          f"alerts; postmortems: {o['postmortems_drafted']} drafted, {o['postmortems_failed']} failed, "
                          f"{o['postmortems_skipped']} not queued (quota); {o['timeline_entries']:,} alert timeline "
                          f"entries"),
        ("set-up", f"{r['setup_seconds']:.1f} s (processes up in {r['start_seconds']:.1f} s, then seeding and "
                   f"drafting the seeded postmortems); {a['users']} logins "
                   f"in {r['login_seconds']:.1f} s (p50 {_ms(r['login_p50'])}, 8 at a time); load average before "
                   f"the run {', '.join(f'{x:.1f}' for x in r['load_average'])}"),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
