"""A worker that dies mid-run leaves a postmortem the sweep picks up again — never one stuck in generating."""

from __future__ import annotations

import threading
from datetime import timedelta

from blametrail import db
from blametrail.jobs import generation
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun, Postmortem


def _resolved_incident(client, member):
    iid = client.post("/api/v1/incidents", json={"title": "API down", "services": ["api"]}, headers=member.headers).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "Rolled back api v9; errors gone."}, headers=member.headers)
    return iid


def _queued_without_job(client, factory, rt, clock):
    """Return (owner, incident id, postmortem id) of a postmortem queued in the database whose job never reached the
    queue (AI off while resolving, so the test controls the generation step by step)."""
    owner = factory.team()["owner"]
    client.patch("/api/v1/org/settings", json={"ai_enabled": False}, headers=owner.headers)
    iid = _resolved_incident(client, owner)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    client.patch("/api/v1/org/settings", json={"ai_enabled": True}, headers=owner.headers)
    with db.transaction(rt.factory) as s:
        pm_id = postmortems.request_generation(session=s, actor=owner.actor, incident_id=iid, now=clock.now()).id
        s.info["deferred"] = []  # the job is "lost"
    return owner, iid, pm_id


def test_killed_worker_is_recovered_by_the_sweep(client, factory, rt, clock):
    rt.settings.stale_generation_seconds = 300
    owner, iid, pm_id = _queued_without_job(client, factory, rt, clock)
    with db.transaction(rt.factory) as s:  # a worker claims it … and is killed (no finish ever comes)
        claimed = postmortems.claim(session=s, pm_id=pm_id, engine="builtin", worker="doomed", now=clock.now())
        dead_attempt, dead_run = claimed[0].attempt, claimed[1].id

    clock.advance(seconds=299)
    assert rt.sweep_once() == []  # not stale yet
    with db.transaction(rt.factory) as s:
        assert s.get(Postmortem, pm_id).status == "generating"

    clock.advance(seconds=2)
    assert rt.sweep_once() == [pm_id]  # re-queued and (immediate queue) drafted
    with db.transaction(rt.factory) as s:
        pm = s.get(Postmortem, pm_id)
        assert pm.status == "draft"
        assert pm.attempt == dead_attempt + 1
        runs = {r.id: r for r in s.query(GenerationRun).filter_by(postmortem_id=pm_id)}
        assert runs[dead_run].status == "abandoned"
        assert [r.status for r in runs.values() if r.id != dead_run] == ["succeeded"]
        # the dead worker's late result is fenced out
        assert postmortems.finish(session=s, pm_id=pm_id, attempt=dead_attempt, run_id=dead_run, draft={}, engine="x",
                                  error=None, evidence={}, now=clock.now()) is False
    body = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert body["status"] == "draft" and body["sections"]["summary"]


def test_queued_but_never_enqueued_is_enqueued_by_the_sweep(client, factory, rt, clock):
    """The web process died between commit and enqueue: the row is queued, the queue has nothing."""
    owner, iid, pm_id = _queued_without_job(client, factory, rt, clock)
    clock.advance(seconds=rt.settings.stale_queued_seconds - 1)
    assert rt.sweep_once() == []
    clock.advance(seconds=2)
    assert rt.sweep_once() == [pm_id]
    assert client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()["status"] == "draft"


def test_duplicate_delivery_generates_once(client, factory, rt, clock):
    owner = factory.team()["owner"]
    iid = _resolved_incident(client, owner)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    with db.transaction(rt.factory) as s:
        pm_id = postmortems.find(session=s, org_id=owner.actor.org_id, incident_id=iid).id
    # the queue delivers the same job again: nothing happens
    again = generation.run_generation(factory=rt.factory, pm_id=pm_id, choose_engine=rt.engine_for_org, clock=clock.now,
                                      lookback_minutes=120)
    assert again == "skipped"
    revisions = client.get(f"/api/v1/incidents/{iid}/postmortem/revisions", headers=owner.headers).json()
    assert [r["kind"] for r in revisions] == ["ai"]


def test_engine_crash_marks_failed_with_reason(client, factory, rt):
    class Broken:
        label = "builtin"

        def draft(self, pack, context=None):
            raise ZeroDivisionError("boom")

    rt.engine_override = Broken()
    owner = factory.team()["owner"]
    iid = _resolved_incident(client, owner)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    body = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert body["status"] == "failed"
    assert "ZeroDivisionError: boom" in body["error"]
    runs = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=owner.headers).json()
    assert runs[0]["status"] == "failed" and runs[0]["evidence"]["incident"]["id"] == iid


def test_provider_failure_falls_back_to_builtin_draft(client, factory, rt):
    from blametrail.errors import UpstreamError

    class Rejecting:
        label = "anthropic:test-model"

        def draft(self, pack, context=None):
            raise UpstreamError("Anthropic rejected the API key (401)")

    rt.engine_override = Rejecting()
    owner = factory.team()["owner"]
    iid = _resolved_incident(client, owner)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    body = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert body["status"] == "draft"
    assert body["engine"] == "builtin"
    assert "Anthropic rejected the API key (401)" in body["error"]
    assert "built-in" in body["error"]


def _claimed(client, factory, rt, clock):
    _, _, pm_id = _queued_without_job(client, factory, rt, clock)
    with db.transaction(rt.factory) as s:
        attempt = postmortems.claim(session=s, pm_id=pm_id, engine="builtin", worker="slow", now=clock.now())[0].attempt
    return pm_id, attempt


def test_a_generation_that_keeps_beating_is_never_swept(client, factory, rt, clock):
    """A long model call is not a dead worker: only silence (no heartbeat) is."""
    rt.settings.stale_generation_seconds = 60
    pm_id, attempt = _claimed(client, factory, rt, clock)
    for _ in range(10):  # ten minutes of generating, beating every 50 s
        clock.advance(seconds=50)
        with db.transaction(rt.factory) as s:
            assert postmortems.heartbeat(session=s, pm_id=pm_id, attempt=attempt, now=clock.now()) is True
        assert rt.sweep_once() == []
    clock.advance(seconds=61)  # then it goes silent
    assert rt.sweep_once() == [pm_id]
    with db.transaction(rt.factory) as s:
        pm = s.get(Postmortem, pm_id)
        assert pm.status == "draft" and pm.attempt == attempt + 1
        # the silent attempt's heartbeat no longer lands anywhere
        assert postmortems.heartbeat(session=s, pm_id=pm_id, attempt=attempt, now=clock.now()) is False


def test_heartbeat_thread_refreshes_the_row_until_stopped(client, factory, rt, clock):
    pm_id, attempt = _claimed(client, factory, rt, clock)
    clock.advance(seconds=30)
    beats = threading.Event()
    with generation.Heartbeat(factory=rt.factory, pm_id=pm_id, attempt=attempt, clock=clock.now, interval=0.01):
        for _ in range(2000):  # wait (bounded) for the thread to write the advanced time
            with db.transaction(rt.factory) as s:
                if s.get(Postmortem, pm_id).heartbeat_at == clock.now():
                    beats.set()
                    break
            beats.wait(0.01)
    assert beats.is_set()
    clock.advance(seconds=5)
    with db.transaction(rt.factory) as s:  # stopped: the row keeps the last beat
        assert s.get(Postmortem, pm_id).heartbeat_at == clock.now() - timedelta(seconds=5)
