"""Benchmark the pure analysis: log template mining speed, and one large incident's time and peak memory.

Usage: PYTHONPATH=src python scripts/bench_analysis.py [--mining-lines 200000] [--lines 1000000]
       [--series 100] [--points 10000]
Numbers are for this machine; the input is synthetic but shaped like real service logs and metrics.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

from blametrail.analysis import logs
from blametrail.analysis.findings import analyse_observations
from blametrail.analysis.observations import LogLine, Series

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
WINDOW = timedelta(hours=3)
_TEMPLATES = [
    "GET /api/v1/orders/{n} 200 {ms}ms user={uid}",
    "POST /api/v1/cart/{n}/items 201 {ms}ms",
    "user {n} signed in from {ip}",
    "cache refresh for key session:{hex} took {ms}ms",
    "processed batch {n} items={k} in {ms}ms",
    "request_id={uid} trace={hex} completed status=200 duration={ms}ms",
    "connected to {ip}:5432 in {ms}ms pool=orders",
    "WARN slow query {ms}ms on table orders rows={k}",
    "scheduler tick {n} lag={ms}ms",
    "ERROR redis timeout after {ms}ms key=session:{hex}",
]
_INCIDENT = 'ERROR charge failed order={n}: TimeoutError in File "/app/payments/client.py", line {k}, in charge_card'


def _text(rng: random.Random, template: str) -> str:
    return template.format(n=rng.randint(1, 999_999), ms=rng.randint(1, 2_000), k=rng.randint(1, 500),
                           uid=uuid.UUID(int=rng.getrandbits(128)), hex=f"{rng.getrandbits(48):012x}",
                           ip=f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")


def make_lines(count: int, seed: int = 7) -> list[LogLine]:
    """Build `count` log lines over three hours, with a new error template in the last 40 minutes."""
    rng = random.Random(seed)
    step = WINDOW.total_seconds() / count
    start, onset = T0 - WINDOW + timedelta(minutes=40), T0 - timedelta(minutes=2)
    out = []
    for i in range(count):
        at = start + timedelta(seconds=i * step)
        template = _INCIDENT if at >= onset and rng.random() < 0.05 else rng.choice(_TEMPLATES)
        out.append(LogLine(at=at, text=_text(rng, template), service=rng.choice(("checkout", "search", "auth"))))
    return out


def make_series(count: int, points: int, seed: int = 11) -> list[Series]:
    """Build `count` noisy series over the window; one in five shifts at the incident start."""
    rng = np.random.default_rng(seed)
    times = [T0 - WINDOW + timedelta(minutes=40) + i * (WINDOW / points) for i in range(points)]
    out = []
    for i in range(count):
        values = rng.normal(100, 5, points)
        if i % 5 == 0:
            values[int(points * 0.9):] += 60
        out.append(Series(name=f"metric_{i}", service="checkout", points=tuple(zip(times, values.tolist()))))
    return out


def _cpu() -> float:
    """Return CPU seconds used by this process."""
    t = os.times()
    return t.user + t.system


def _rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mining-lines", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--points", type=int, default=10_000)
    args = parser.parse_args(argv)

    sample = make_lines(args.mining_lines)
    split = len(sample) * 3 // 4
    started, cpu = time.perf_counter(), _cpu()
    stats = logs.mine(sample[:split], sample[split:])
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    print(f"template mining, {len(sample):,} lines: {len(sample) / elapsed:,.0f} lines/s wall, "
          f"{len(sample) / cpu:,.0f} lines/s CPU ({elapsed:.2f} s, {len(stats)} new/spiking templates)")
    del sample

    lines, series = make_lines(args.lines), make_series(args.series, args.points)
    before = _rss_mb()
    window = {"window_start": T0 - WINDOW + timedelta(minutes=40), "incident_start": T0,
              "window_end": T0 + timedelta(minutes=40)}
    started = time.perf_counter()
    analyse_observations(series, [], **window)
    metrics_time = time.perf_counter() - started
    started, cpu = time.perf_counter(), _cpu()
    metrics, found = analyse_observations(series, lines, **window)
    total, cpu = time.perf_counter() - started, _cpu() - cpu
    print(f"incident: {len(lines):,} log lines + {len(series)} series × {args.points:,} points: {total:.1f} s wall, "
          f"{cpu:.1f} s CPU "
          f"(metrics alone {metrics_time:.2f} s, {metrics_time / len(series) * 1000:.1f} ms per series); "
          f"{len(metrics)} change points, {len(found)} log findings")
    print(f"peak RSS {_rss_mb():,.0f} MB (input held in memory before analysis: {before:,.0f} MB)")


if __name__ == "__main__":
    sys.exit(main())
