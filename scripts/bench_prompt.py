"""Benchmark: evidence recall of the scenario suite's key events within the LLM prompt, at given token budgets.

Usage: python scripts/bench_prompt.py [--scenarios 50] [--seed N] [--budgets 24000,8000,3000]
For each scenario: record it, fetch its metrics and logs over HTTP from the local Prometheus/Loki twin, build the
evidence pack, build the prompt at each budget and check which key events (culprit deploy, metric onset, first new
error) are present in the prompt by evidence id. Prints recall, prompt tokens and build time per budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from blametrail import db
from blametrail.ai.prompt import build_prompt
from blametrail.crypto import SecretBox
from blametrail.evidence.observe import observe
from blametrail.evidence.pack import build_pack
from blametrail.incidents.models import Incident
from blametrail.integrations import service as integrations
from blametrail.scenarios import DEFAULT_SEED
from blametrail.scenarios.evaluate import LOOKBACK, key_evidence, record, setup
from blametrail.scenarios.generator import generate
from blametrail.scenarios.servers import ObservabilityServer
from blametrail.settings import Settings


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", type=int, default=50)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--budgets", default="24000,8000,3000")
    args = p.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    scenarios = generate(args.scenarios, args.seed)
    found = {b: [0, 0] for b in budgets}
    tokens = {b: [] for b in budgets}
    seconds = {b: [] for b in budgets}
    box = SecretBox("bench-prompt")
    with tempfile.TemporaryDirectory(prefix="bt-bench-prompt-") as tmp, ObservabilityServer(scenarios) as server:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/bench.db", sqlite_synchronous="NORMAL",
                            _env_file=None)
        engine = db.make_engine(settings)
        db.migrate(engine)
        factory = db.make_sessionmaker(engine)
        now = max(s.resolved_at for s in scenarios) + timedelta(days=1)
        actor = setup(factory, box, server.url, now)
        for s in scenarios:
            with db.transaction(factory) as session:
                incident, keys = record(session, actor, s, now)
                incident_id = incident.id
            with db.transaction(factory) as session:
                incident = session.get(Incident, incident_id)
                pack = build_pack(session=session, incident=incident,
                                  lookback_minutes=int(LOOKBACK.total_seconds() // 60), now=now)
                tasks = integrations.plan_fetch(session=session, org_id=incident.org_id,
                                                services=incident.service_names, box=box)
            pack, _ = observe(pack, tasks)
            wanted = [e for e in key_evidence(s, pack, keys) if e is not None]
            for b in budgets:
                t0 = time.perf_counter()
                prompt = build_prompt(pack, budget_tokens=b)
                seconds[b].append(time.perf_counter() - t0)
                tokens[b].append(prompt.tokens)
                found[b][0] += sum(f'id="{e}"' in prompt.user for e in wanted)
                found[b][1] += len(wanted)
        engine.dispose()
    print(f"{len(scenarios)} scenarios (seed {args.seed}); key events with evidence: {found[budgets[0]][1]}")
    print(f"{'budget':>8} {'recall':>8} {'tokens median':>14} {'tokens max':>11} {'build ms median':>16}")
    for b in budgets:
        hit, total = found[b]
        print(f"{b:>8} {hit / total if total else 0:>8.3f} {statistics.median(tokens[b]):>14.0f} {max(tokens[b]):>11}"
              f" {statistics.median(seconds[b]) * 1000:>16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
