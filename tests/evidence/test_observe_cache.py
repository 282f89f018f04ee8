"""Cached connector findings: a faithful JSON round trip, reused only while fresh and for the same fetch plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from blametrail.analysis.observations import LogLine, MetricEvidence, Series
from blametrail.evidence import observe
from blametrail.integrations import service as integrations
from blametrail.integrations.common import Signal
from blametrail.integrations.service import FetchTask
from tests.ai import at, make_pack

TTL = timedelta(minutes=2)


def _tasks(*names: str) -> list[FetchTask]:
    return [FetchTask(name, None, Signal(name="error_rate", kind="metric", query="rate($service)"), "checkout")
            for name in names]


def _pack():
    metric = MetricEvidence(id="metric_2", series="latency", service=None, onset=at(1), before=100.0, after=900.5,
                            magnitude=8.005, direction="up", unit="ms", source="prom",
                            points=((at(-1), 100.0), (at(0), 120.0), (at(1), 900.5)))
    pack = make_pack(resolved=False)
    return replace(pack, metrics=(*pack.metrics, metric))


def test_the_cache_round_trips_every_finding():
    pack = _pack()
    cached = observe.to_cache(pack, ["loki (logs for checkout): timed out"], key="k")
    back, errors = observe.from_cache(replace(pack, metrics=(), logs=(), observed=False), cached, key="k")
    assert back.metrics == pack.metrics and back.logs == pack.logs and back.observed is True
    assert errors == ["loki (logs for checkout): timed out"]


@pytest.mark.parametrize("damage", [
    lambda c: None, lambda c: "text", lambda c: {**c, "key": "other"}, lambda c: {**c, "format": 0},
    lambda c: {**c, "metrics": [{"id": "metric_1"}]}, lambda c: {**c, "logs": [{**c["logs"][0], "incident_count": "x"}]},
    lambda c: {**c, "metrics": [{**c["metrics"][0], "onset": "yesterday"}]},
])
def test_a_foreign_or_damaged_cache_is_not_used(damage):
    pack = _pack()
    assert observe.from_cache(pack, damage(observe.to_cache(pack, [], key="k")), key="k") is None


def test_findings_json_cannot_store_are_not_cached():
    pack = _pack()
    broken = replace(pack, metrics=(replace(pack.metrics[0], magnitude=float("inf")),))
    assert observe.to_cache(broken, [], key="k") is None


def test_the_plan_key_ignores_the_moving_window_end_but_not_the_plan_or_the_resolution():
    pack = make_pack(resolved=False)
    key = observe.plan_key(pack, _tasks("prom"))
    assert observe.plan_key(replace(pack, window_end=pack.window_end + timedelta(minutes=5)), _tasks("prom")) == key
    assert observe.plan_key(pack, _tasks("prom", "loki")) != key
    assert observe.plan_key(pack, _tasks("loki", "prom")) == observe.plan_key(pack, _tasks("prom", "loki"))
    resolved = replace(pack, incident=replace(pack.incident, resolved_at=at(40)))
    assert observe.plan_key(resolved, _tasks("prom")) != key
    started_earlier = replace(pack, window_start=pack.window_start - timedelta(minutes=10))
    assert observe.plan_key(started_earlier, _tasks("prom")) != key


@pytest.fixture
def backend(monkeypatch) -> list:
    """The connector seam answering a rising error rate and a new log line; each call recorded."""
    calls: list = []

    def collect(tasks, *, start, end, step_seconds=60):
        calls.append((start, end))
        points = tuple((start + timedelta(minutes=i), 0.01 if start + timedelta(minutes=i) < at(0) else 0.3)
                       for i in range(int((end - start).total_seconds() // 60)))
        lines = [LogLine(at=at(i / 4), text="ERROR pool exhausted", service="checkout") for i in range(40)]
        return [Series(name="error_rate", service="checkout", points=points, source="prom")], lines, []

    monkeypatch.setattr(integrations, "collect", collect)
    return calls


def test_observe_cached_fetches_then_reuses_until_the_ttl(backend):
    pack = replace(make_pack(resolved=False), metrics=(), logs=(), observed=False)
    tasks = _tasks("prom")
    first = observe.observe_cached(pack, tasks, cached=None, observed_at=None, now=at(30), ttl=TTL)
    assert first.fetched and first.cache is not None and len(backend) == 1
    assert first.pack.metrics and first.pack.logs and first.pack.observed

    later = replace(pack, window_end=at(31))
    reused = observe.observe_cached(later, tasks, cached=first.cache, observed_at=at(30), now=at(31), ttl=TTL)
    assert not reused.fetched and reused.cache is None and len(backend) == 1
    assert reused.pack.metrics == first.pack.metrics and reused.pack.logs == first.pack.logs
    assert reused.pack.window_end == at(31)  # the rest of the pack is today's

    stale = observe.observe_cached(later, tasks, cached=first.cache, observed_at=at(30), now=at(32), ttl=TTL)
    assert stale.fetched and len(backend) == 2
    ahead = observe.observe_cached(later, tasks, cached=first.cache, observed_at=at(35), now=at(31), ttl=TTL)
    assert ahead.fetched and len(backend) == 3  # a cache from the future (a clock step back) is not trusted


def test_observe_cached_without_tasks_fetches_nothing(backend):
    pack = make_pack(resolved=False)
    out = observe.observe_cached(pack, [], cached=None, observed_at=None, now=at(30), ttl=TTL)
    assert out.pack is pack and out.errors == [] and out.cache is None and not out.fetched and backend == []
