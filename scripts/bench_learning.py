"""Benchmark: search and analytics over a large history, on SQLite and PostgreSQL, measured in one run.

Usage:
  python scripts/bench_learning.py                                   # SQLite (a temporary file), 100,000 incidents
  python scripts/bench_learning.py --database-url sqlite --database-url postgresql+psycopg://postgres@127.0.0.1/bench
  options: --incidents 100000 --entries 2000000 --queries 40 --repeat 3

For each database: migrate a fresh schema, then write `--incidents` incidents over the last two years (services,
severities, acknowledge/mitigate/resolve times), `--entries` timeline entries spread over them (40 % updates people
wrote, the rest alerts and status changes), one action item per four incidents, and the search index rows the app
would write (the FTS5 triggers or the generated tsvector fill themselves). Then time, through the same service
functions the API calls: `--queries` searches (one to three words, common and rare, a prefix, filters) repeated
`--repeat` times, and the analytics report for the last 365 days grouped by service, severity and month.
Prints p50/p95 per kind, the index size and how long loading took. A PostgreSQL database is emptied
(DROP SCHEMA public CASCADE): use a dedicated one.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

SERVICES = [f"{a}-{b}" for a in ("checkout", "payments", "search", "orders", "cart", "ledger", "accounts", "catalog",
                                 "shipping", "pricing") for b in ("api", "worker", "db", "gateway", "cache")]
SYMPTOMS = ["timeouts", "5xx errors", "latency spike", "connection pool exhausted", "OOM kills", "certificate expired",
            "DNS failures", "queue backlog", "deadlock", "disk full", "rate limited", "replica lag", "crash loop",
            "stale cache", "bad deploy", "config drift", "TLS handshake errors", "thread starvation"]
UPDATE_WORDS = ("investigating rolled back restarted scaled pool connections errors elevated recovered customers "
                "checkout payments latency p99 alerts paging deploy canary config flag disabled enabled cache "
                "database replica primary failover queue consumers backlog drained retries timeouts upstream "
                "vendor status page mitigated monitoring resolved root cause leak memory cpu throttled node "
                "kubernetes pod evicted dns resolver certificate renewed rotated index vacuum lock contention").split()
QUERIES = ["timeouts", "pool", "deadlock", "certificate expired", "checkout timeouts", "replica lag", "rolled back",
           "memory leak", "dns", "queue backlog drained", "vacuum", "failover", "payments-api", "throttl", "evicted",
           "status page", "canary", "lock contention", "disk full", "crash loop", "stale cache", "resolver",
           "customers checkout", "tls handshake", "retries upstream", "connections", "config flag", "oom", "p99",
           "rate limited", "zzzz nothing matches", "consumer", "renewed", "index", "primary", "gateway", "scaled",
           "kubernetes pod", "mitigated", "cpu"]


def _settings(url: str, data_dir: str):
    from blametrail.settings import Settings

    return Settings(data_dir=Path(data_dir), database_url=url, embedded_workers=0, monitor_scheduler=False,
                    _env_file=None)


def load(url: str, data_dir: str, incidents: int, entries: int, seed: int = 7):
    """Create a fresh schema and fill it; return (engine, org_id, seconds)."""
    from sqlalchemy import insert, text

    from blametrail import db
    from blametrail.actions.models import ActionItem
    from blametrail.incidents.models import Incident, IncidentService, TimelineEntry
    from blametrail.learning.models import SearchDoc
    from blametrail.orgs import service as orgs

    engine = db.make_engine(_settings(url, data_dir))
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.migrate(engine)
    factory = db.make_sessionmaker(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    with db.transaction(factory) as s:
        org = orgs.create_org(session=s, slug="bench", name="Bench", plan="pro", now=now)
        org_id = org.id
    rnd = random.Random(seed)
    began = time.perf_counter()
    per = max(1, entries // incidents)
    entry_id = doc_id = 0
    batch = 5000
    with engine.begin() as conn:
        inc_rows, svc_rows, entry_rows, doc_rows, item_rows = [], [], [], [], []

        def flush(force=False):
            tables = ((Incident, inc_rows), (IncidentService, svc_rows), (TimelineEntry, entry_rows),
                      (ActionItem, item_rows), (SearchDoc, doc_rows))
            if not force and all(len(rows) < batch for _, rows in tables):
                return
            for table, rows in tables:  # why: parents first, for the foreign keys
                if rows:
                    conn.execute(insert(table), rows)
                    rows.clear()

        for i in range(1, incidents + 1):
            started = now - timedelta(days=730) * (1 - i / incidents) - timedelta(minutes=rnd.randrange(1440))
            services = rnd.sample(SERVICES, 1 if rnd.random() < 0.8 else 2)
            title = f"{services[0]} {rnd.choice(SYMPTOMS)}"
            resolve = rnd.lognormvariate(3.8, 0.9)
            inc_rows.append({"id": i, "org_id": org_id, "title": title, "description": "", "severity":
                             rnd.choice(["SEV-1", "SEV-2", "SEV-2", "SEV-3", "SEV-3", "SEV-4", None]),
                             "status": "resolved", "started_at": started,
                             "created_at": started + timedelta(minutes=rnd.expovariate(1 / 6)),
                             "acknowledged_at": started + timedelta(minutes=rnd.expovariate(1 / 8)),
                             "mitigated_at": started + timedelta(minutes=resolve * 0.7),
                             "resolved_at": started + timedelta(minutes=resolve), "updated_at": started,
                             "source": "alert"})
            svc_rows += [{"incident_id": i, "service": s} for s in services]
            doc_id += 1
            doc_rows.append({"id": doc_id, "org_id": org_id, "incident_id": i, "kind": "incident", "ref_id": i,
                             "section": "", "title": title, "body": "", "at": started})
            for k in range(per):
                entry_id += 1
                at = started + timedelta(minutes=k * 2)
                if k % 5 < 2:  # 40 % are people's updates
                    body = " ".join(rnd.choice(UPDATE_WORDS) for _ in range(rnd.randint(6, 30)))
                    entry_rows.append({"id": entry_id, "org_id": org_id, "incident_id": i, "kind": "update",
                                       "at": at, "body": body, "author": "oncall@bench.example", "created_at": at,
                                       "data": None})
                    doc_id += 1
                    doc_rows.append({"id": doc_id, "org_id": org_id, "incident_id": i, "kind": "update",
                                     "ref_id": entry_id, "section": "", "title": "oncall@bench.example", "body": body,
                                     "at": at})
                else:
                    entry_rows.append({"id": entry_id, "org_id": org_id, "incident_id": i, "kind": "alert",
                                       "at": at, "body": f"{services[0]} alert firing", "created_at": at, "author": None,
                                       "data": {"name": f"{services[0]}-HighErrorRate", "status": "firing"}})
            if i % 4 == 0:
                title_ai = f"Alert on {rnd.choice(SYMPTOMS)} for {services[0]}"
                item_rows.append({"id": i // 4, "org_id": org_id, "incident_id": i, "title": title_ai,
                                  "description": "", "priority": "medium", "status": rnd.choice(
                                      ["open", "done", "done", "in_progress", "wont_do"]), "evidence": [],
                                  "source": "draft", "created_at": started, "updated_at": started,
                                  "due_date": (started + timedelta(days=30)).date()})
                doc_id += 1
                doc_rows.append({"id": doc_id, "org_id": org_id, "incident_id": i, "kind": "action_item",
                                 "ref_id": i // 4, "section": "", "title": title_ai, "body": "", "at": started})
            flush()
        flush(force=True)
        if engine.dialect.name == "postgresql":
            for table in ("incident", "timeline_entry", "action_item", "search_doc"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return engine, org_id, time.perf_counter() - began, entry_id, doc_id


def index_size(engine, path: str | None) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            gin = conn.scalar(text("SELECT pg_relation_size('ix_search_doc_tsv')"))
            table = conn.scalar(text("SELECT pg_total_relation_size('search_doc')"))
            return f"GIN index {gin / 2**20:.0f} MiB; search_doc with its tsvector and indexes {table / 2**20:.0f} MiB"
        try:
            fts = conn.scalar(text("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'search_fts%'"))
            docs = conn.scalar(text("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%search_doc%'"))
            return f"FTS5 tables {fts / 2**20:.0f} MiB; search_doc and its indexes {docs / 2**20:.0f} MiB"
        except Exception:  # dbstat is not compiled into every SQLite
            return f"database file {os.path.getsize(path) / 2**20:.0f} MiB (dbstat unavailable)"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(engine, org_id: int, queries: int, repeat: int) -> dict:
    from blametrail import db
    from blametrail.learning import analytics, search

    factory = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    times: dict[str, list[float]] = {"search": [], "search (filtered)": [], "analytics": []}
    hits = []
    chosen = (QUERIES * (queries // len(QUERIES) + 1))[:queries]
    for _ in range(repeat):
        for n, q in enumerate(chosen):
            with db.transaction(factory) as s:
                started = time.perf_counter()
                found = search.search(s, org_id=org_id, query=q)
                times["search"].append((time.perf_counter() - started) * 1000)
                hits.append(len(found))
                filters = search.Filters(service=SERVICES[n % len(SERVICES)], severity="SEV-2",
                                         start=now - timedelta(days=180))
                started = time.perf_counter()
                search.search(s, org_id=org_id, query=q, filters=filters)
                times["search (filtered)"].append((time.perf_counter() - started) * 1000)
        for group in analytics.GROUPS:
            with db.transaction(factory) as s:
                started = time.perf_counter()
                analytics.report(s, org_id=org_id, when=analytics.range_from(None, None, now), group_by=group,
                                 today=now.date())
                times["analytics"].append((time.perf_counter() - started) * 1000)
    return {"times": times, "mean_hits": statistics.mean(hits)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", action="append", default=None,
                        help="sqlite (a temporary file) or a PostgreSQL URL; repeat to compare (default: sqlite)")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=2_000_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"BlameTrail learning benchmark: {args.incidents:,} incidents, {args.entries:,} timeline entries")
    for url in args.database_url or ["sqlite"]:
        with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
            path = None
            if url == "sqlite":
                path = f"{tmp}/bench.db"
                url = f"sqlite:///{path}"
            engine, org_id, seconds, entries, docs = load(url, tmp, args.incidents, args.entries)
            name = engine.dialect.name
            print(f"\n[{name}] loaded {entries:,} entries and {docs:,} search rows in {seconds:.0f} s; "
                  f"{index_size(engine, path)}")
            result = measure(engine, org_id, args.queries, args.repeat)
            for kind, values in result["times"].items():
                print(f"[{name}] {kind:<18} n={len(values):>4}  p50 {_pct(values, 0.5):8.1f} ms   "
                      f"p95 {_pct(values, 0.95):8.1f} ms   max {max(values):8.1f} ms")
            print(f"[{name}] results per search (limit 20): {result['mean_hits']:.1f} on average")
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
