"""Observability evidence reaches the draft: fetched at generation time, analysed, cited and frozen with the run."""

from __future__ import annotations

from datetime import timedelta

from blametrail import db
from blametrail.integrations import service as integrations
from blametrail.integrations.schemas import ConnectionCreate
from tests.conftest import START
from tests.factories import iso


def _fake_connection(rt, owner, *, fail: str | None = None):
    start = START - timedelta(minutes=150)
    points = [[iso(start + timedelta(minutes=i)), 0.002 if start + timedelta(minutes=i) < START - timedelta(minutes=30)
               else 0.15] for i in range(151)]
    logs = [{"at": iso(START - timedelta(minutes=30) + timedelta(seconds=15 * i)), "service": "checkout",
             "text": f"ERROR payments/pool.py:88 connection pool exhausted (waiters={100 + i})"} for i in range(60)]
    logs += [{"at": iso(START - timedelta(minutes=140) + timedelta(minutes=i)), "service": "checkout",
              "text": f"INFO request served in {20 + i} ms"} for i in range(100)]
    options = {"series": [{"name": "error_rate", "service": "checkout", "points": points, "unit": "ratio"}],
               "logs": logs}
    if fail:
        options["fail"] = fail
    with db.transaction(rt.factory) as s:
        integrations.create(session=s, actor=owner.actor, box=rt.secret_box, now=rt.clock.now(), allow_fake=True,
                            data=ConnectionCreate(name="fake-prom", provider="fake", signals=[
                                {"name": "error_rate", "kind": "metric", "query": "rate($service)", "services": ["*"]},
                                {"name": "app-logs", "kind": "log", "query": "{app=\"$service\"}", "services": ["*"]},
                            ], options=options))


def _incident(client, m):
    client.post("/api/v1/deploys", headers=m.headers, json={
        "service": "checkout", "environment": "production", "version": "v9.1.0",
        "deployed_at": iso(START - timedelta(minutes=33)),
        "commits": [{"sha": "4e7a91c0", "author": "Jo", "message": "Shrink the payment pool",
                     "files": ["payments/pool.py"]}]}).raise_for_status()
    client.post("/api/v1/deploys", headers=m.headers, json={
        "service": "search", "environment": "production", "version": "v2.0.0",
        "deployed_at": iso(START - timedelta(minutes=31)), "commits": []}).raise_for_status()
    iid = client.post("/api/v1/incidents", headers=m.headers, json={
        "title": "Checkout errors", "services": ["checkout"], "started_at": iso(START - timedelta(minutes=29))}).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=m.headers).raise_for_status()
    return iid


def test_findings_are_cited_and_frozen_with_the_run(client, factory, rt):
    owner = factory.team()["owner"]
    _fake_connection(rt, owner)
    iid = _incident(client, owner)
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["status"] == "draft", pm
    sources = {row["source"] for row in pm["sections"]["timeline"]}
    assert {"metric", "log"} <= sources
    cited = {e for row in pm["sections"]["timeline"] for e in row["evidence"]}
    assert any(e.startswith("metric_") for e in cited) and any(e.startswith("log_") for e in cited)
    assert "v9.1.0" in pm["sections"]["root_cause"] and "v2.0.0" not in pm["sections"]["root_cause"]
    run = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=owner.headers).json()[0]
    assert run["evidence"]["metrics"] and run["evidence"]["logs"]
    assert "payments/pool.py" in " ".join(g["template"] for g in run["evidence"]["logs"])


def test_unreachable_backend_still_drafts_and_says_what_is_missing(client, factory, rt):
    owner = factory.team()["owner"]
    _fake_connection(rt, owner, fail="Prometheus at http://prom:9090 could not be reached: connection refused")
    iid = _incident(client, owner)
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["status"] == "draft"
    assert "could not be fetched" in pm["error"] and "connection refused" in pm["error"]
    run = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=owner.headers).json()[0]
    assert run["evidence"]["observability_errors"]
    assert not run["evidence"]["metrics"]
