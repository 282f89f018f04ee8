"""The live summary reads the connectors' metrics and logs like the postmortem, and caches them per incident so a
storm of rebuilds does not query the backends each time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail import db
from blametrail.integrations import service as integrations
from blametrail.integrations.schemas import ConnectionCreate
from tests.conftest import START
from tests.evidence.test_observability import _fake_connection
from tests.summaries.helpers import open_incident, row, run_scheduled

STARTED = START - timedelta(minutes=29)  # the fake connection's error rate jumps a minute before


@pytest.fixture
def fetches(monkeypatch) -> list:
    """Count the connector fetches (the real ones still run)."""
    calls: list = []
    real = integrations.collect

    def counting(tasks, **kwargs):
        calls.append(sorted({t.connection for t in tasks}))
        return real(tasks, **kwargs)

    monkeypatch.setattr(integrations, "collect", counting)
    return calls


def _post_and_rebuild(client, rt, owner, iid, body: str, *, after_seconds: float) -> None:
    rt.clock.advance(seconds=after_seconds)
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": body}, headers=owner.headers).raise_for_status()
    run_scheduled(rt)
    assert body in row(rt, iid).content["what_is_happening"]


def test_the_summary_cites_metrics_and_logs_like_the_postmortem(client, factory, rt, fetches):
    owner = factory.team()["owner"]
    _fake_connection(rt, owner)
    iid = open_incident(client, owner, started_at=STARTED)
    stored = row(rt, iid)
    assert fetches == [["fake-prom"]]
    assert "metric_1" in stored.content["impact_so_far"] and "error_rate went up" in stored.content["impact_so_far"]
    assert "connection pool exhausted" in stored.content["impact_so_far"]
    assert {"metric_1", "log_1"} <= set(stored.content["citations"])
    assert stored.observed_at == START and stored.observations["key"]
    assert [g["id"] for g in stored.observations["logs"]] and stored.observations["errors"] == []


def test_fetches_are_reused_until_they_are_older_than_the_ttl(client, factory, rt, fetches):
    owner = factory.team()["owner"]
    _fake_connection(rt, owner)
    iid = open_incident(client, owner, started_at=STARTED)
    assert len(fetches) == 1
    _post_and_rebuild(client, rt, owner, iid, "Paging payments", after_seconds=40)
    _post_and_rebuild(client, rt, owner, iid, "Rolling back", after_seconds=40)
    assert len(fetches) == 1  # two rebuilds within the TTL (120 s) asked the backend nothing
    assert "metric_1" in row(rt, iid).content["impact_so_far"]  # … and still cite what it returned
    _post_and_rebuild(client, rt, owner, iid, "Rolled back", after_seconds=45)
    assert len(fetches) == 2 and row(rt, iid).observed_at == START + timedelta(seconds=125)


def test_a_resolution_or_a_new_connection_fetches_again_at_once(client, factory, rt, fetches):
    owner = factory.team()["owner"]
    _fake_connection(rt, owner)
    iid = open_incident(client, owner, started_at=STARTED)
    rt.clock.advance(seconds=40)
    with db.transaction(rt.factory) as s:
        integrations.create(session=s, actor=owner.actor, box=rt.secret_box, now=rt.clock.now(), allow_fake=True,
                            data=ConnectionCreate(name="second", provider="fake", signals=[
                                {"name": "latency", "kind": "metric", "query": "p99($service)", "services": ["*"]}],
                                options={"series": []}))
    _post_and_rebuild(client, rt, owner, iid, "Added latency", after_seconds=0)
    assert fetches == [["fake-prom"], ["fake-prom", "second"]]  # what to fetch changed: the cache does not apply

    assert row(rt, iid).observed_at == START + timedelta(seconds=40)
    rt.clock.advance(seconds=40)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers).raise_for_status()  # (the draft fetches too)
    run_scheduled(rt)
    final = row(rt, iid)
    assert final.observed_at == START + timedelta(seconds=80)  # the window is final now: fetched once more for it
    assert "was resolved" in final.content["what_is_happening"]


def test_an_unreachable_backend_is_noted_and_not_hammered(client, factory, rt, fetches):
    owner = factory.team()["owner"]
    _fake_connection(rt, owner, fail="Prometheus at http://prom:9090 could not be reached: connection refused")
    iid = open_incident(client, owner, started_at=STARTED)
    first = row(rt, iid)
    assert first.status == "ready" and "could not be fetched" in first.error and "connection refused" in first.error
    _post_and_rebuild(client, rt, owner, iid, "Still down", after_seconds=40)
    assert len(fetches) == 1  # a storm does not retry a down backend on every rebuild
    assert "connection refused" in row(rt, iid).error  # the gap is still said


def test_a_zero_ttl_fetches_for_every_rebuild(client, factory, rt, fetches, monkeypatch):
    monkeypatch.setattr(rt.settings, "summary_observation_ttl_seconds", 0)
    owner = factory.team()["owner"]
    _fake_connection(rt, owner)
    iid = open_incident(client, owner, started_at=STARTED)
    _post_and_rebuild(client, rt, owner, iid, "Paging payments", after_seconds=40)
    assert len(fetches) == 2


def test_an_incident_without_connections_stores_no_observations(client, factory, rt, fetches):
    owner = factory.team()["owner"]
    iid = open_incident(client, owner)
    stored = row(rt, iid)
    assert stored.status == "ready" and stored.observations is None and stored.observed_at is None
    assert fetches == [] and stored.error is None
