"""Benchmark: resolve-to-draft latency for 50 incidents through the real embedded queue, and SQL per generation.

Usage: python scripts/bench_generation.py [--incidents 50] [--database-url URL] [--queue-url URL]
Prints a small table; numbers are for the built-in engine on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event

from blametrail import db
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import CommitIn, DeployCreate
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.jobs import generation
from blametrail.orgs import service as orgs
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Postmortem
from blametrail.runtime import build_runtime
from blametrail.settings import Settings


def seed_incident(rt, actor, n: int, *, resolve: bool):
    now = rt.clock.now()
    start = now - timedelta(minutes=45)
    with db.transaction(rt.factory) as s:
        deploys.create(session=s, actor=actor, now=now, data=DeployCreate(
            service=f"svc{n % 7}", environment="production", version=f"v1.{n}", deployed_at=start - timedelta(minutes=5),
            commits=[CommitIn(sha=f"{n:04x}abcd{i}", author=f"dev{i}", message=f"Change {i} to handler cache",
                              files=[f"svc/handler_{i}.py"]) for i in range(3)]))
        inc = incidents.create(session=s, actor=actor, now=now, data=IncidentCreate(
            title=f"Errors on svc{n % 7} #{n}", severity="SEV-3", services=[f"svc{n % 7}"], started_at=start))
        for m in range(6):
            incidents.add_update(session=s, actor=actor, incident=inc, now=now, data=UpdateCreate(
                body=f"Update {m}: error rate {10 + m}% on svc{n % 7}; handler cache suspected.",
                at=start + timedelta(minutes=3 + 5 * m)))
        if not resolve:
            return inc.id
    t0 = time.perf_counter()
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=actor.org_id, incident_id=inc.id)
        postmortems.resolve_incident(session=s, incident=inc, now=now, resolved_at=None, by_label=actor.label,
                                     by_user_id=actor.user_id)
        pm_id = postmortems.find(session=s, org_id=actor.org_id, incident_id=inc.id).id
    return pm_id, t0


def wait_draft(rt, pm_id: int) -> None:
    while True:
        with db.transaction(rt.factory) as s:
            if s.get(Postmortem, pm_id).status in ("draft", "failed"):
                return
        time.sleep(0.002)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--incidents", type=int, default=50)
    p.add_argument("--database-url", default=None)
    p.add_argument("--queue-url", default=None)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    settings = Settings(data_dir=tmp, database_url=args.database_url, queue_url=args.queue_url, _env_file=None)
    rt = build_runtime(settings)
    rt.huey.flush()
    with db.transaction(rt.factory) as s:
        org = orgs.create_org(session=s, slug=f"bench{int(time.time())}", name="Bench", plan="pro", now=rt.clock.now())
        org_id = org.id
    with db.transaction(rt.factory) as s:
        from blametrail.orgs.models import (
            MonthlyUsage,  # why: 50 incidents exceed pro's 50/month with the SQL probe
        )
        s.add(MonthlyUsage(org_id=org_id, month=rt.clock.now().strftime("%Y-%m"), used=-10_000))
        actor = orgs.actor_for(orgs.create_user(session=s, email="bench@bench.test", org=orgs.get_org(session=s, org_id=org_id),
                                                role="member", password=None, now=rt.clock.now()))

    # 1. SQL statements for one generation, run in-process
    pm_id = seed_incident(rt, actor, 0, resolve=True)[0]
    with db.transaction(rt.factory) as s:  # nothing consumes the queue yet; run the job here
        pass
    count = {"n": 0}

    def counter(*_a, **_k):
        count["n"] += 1

    event.listen(rt.engine, "before_cursor_execute", counter)
    generation.run_generation(factory=rt.factory, pm_id=pm_id, choose_engine=rt.engine_for_org, clock=rt.clock.now,
                              lookback_minutes=settings.lookback_minutes)
    event.remove(rt.engine, "before_cursor_execute", counter)

    # 2. resolve-to-draft latency through the real queue and consumer threads
    rt.start_background(workers=settings.embedded_workers, sweep=False)
    latencies = []
    for n in range(1, args.incidents + 1):
        pm_id, t0 = seed_incident(rt, actor, n, resolve=True)
        wait_draft(rt, pm_id)
        latencies.append((time.perf_counter() - t0) * 1000)
    rt.close()
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    dbkind = rt.engine.dialect.name
    queue = type(rt.huey).__name__
    print(f"database={dbkind} queue={queue} engine=builtin incidents={len(latencies)} workers={settings.embedded_workers}")
    print(f"{'metric':34} {'value':>10}")
    print(f"{'resolve-to-draft median (ms)':34} {statistics.median(latencies):10.1f}")
    print(f"{'resolve-to-draft p95 (ms)':34} {p95:10.1f}")
    print(f"{'resolve-to-draft max (ms)':34} {latencies[-1]:10.1f}")
    print(f"{'SQL statements per generation':34} {count['n']:10d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
