"""When the live summary is rebuilt: at most once per minimum interval in a storm, and never left "Updating…" when
its job was lost (a restart with an in-memory queue, a killed worker, the demo)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blametrail import db
from blametrail.engines.builtin import BuiltinEngine
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.incidents.schemas import IncidentCreate
from blametrail.jobs import summary as summary_job
from blametrail.summaries import service as summaries
from tests.summaries.helpers import open_incident, row, run_scheduled, scheduled
from tests.web.test_pages import PASSWORD, login, soup


class Counting(BuiltinEngine):
    """The built-in engine, counting the summaries it writes."""

    label = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def summarize(self, pack):
        self.calls += 1
        return super().summarize(pack)


def test_a_storm_rebuilds_once_per_interval(client, factory, rt):
    owner = factory.team()["owner"]
    rt.engine_override = engine = Counting()
    iid = open_incident(client, owner)
    assert engine.calls == 1 and row(rt, iid).status == "ready"
    for n in range(40):  # forty separate deliveries of evidence within the interval
        r = client.post(f"/api/v1/incidents/{iid}/updates", json={"body": f"Alert wave {n}"}, headers=owner.headers)
        assert r.status_code == 201
        rt.clock.advance(seconds=0.5)
    assert engine.calls == 1  # nothing rebuilt inside the interval
    assert scheduled(rt) == [(summaries.TASK, (iid,))]  # one rebuild waits for the end of the interval
    waiting = row(rt, iid)
    assert waiting.status == "queued" and waiting.requested_at == waiting.generated_at + timedelta(seconds=30)

    rt.clock.advance(seconds=10)  # the interval has ended
    assert run_scheduled(rt) == 1 and engine.calls == 2
    built = row(rt, iid)
    assert built.status == "ready" and "Alert wave 39" in built.content["what_is_happening"]

    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "One more"}, headers=owner.headers)
    assert engine.calls == 2 and len(scheduled(rt)) == 1  # again at most one per interval
    rt.engine_override = None


def test_without_a_minimum_interval_evidence_rebuilds_at_once(client, factory, rt, monkeypatch):
    owner = factory.team()["owner"]
    monkeypatch.setattr(rt.settings, "summary_min_interval_seconds", 0)
    iid = open_incident(client, owner)
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "Rolled back"}, headers=owner.headers)
    assert scheduled(rt) == []
    assert "Rolled back" in row(rt, iid).content["what_is_happening"]


def _lost_refresh(rt, factory, member=None) -> int:
    """Open an incident whose summary refresh was asked for but never reached a worker (its job was lost)."""
    actor = (member or factory.team()["member"]).actor
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=actor, now=rt.clock.now(), data=IncidentCreate(title="Lost job"))
        s.info["deferred"] = []  # what a restart with an in-memory queue (or a dropped enqueue) does
    return inc.id


def test_the_sweep_requeues_a_refresh_whose_job_was_lost(rt, factory):
    iid = _lost_refresh(rt, factory)
    assert row(rt, iid).status == "queued"
    rt.clock.advance(seconds=summaries.STALE_QUEUED.total_seconds() - 1)
    rt.sweep_once()
    assert row(rt, iid).status == "queued"  # not yet presumed lost
    rt.clock.advance(seconds=2)
    rt.sweep_once()  # re-queued; the test queue runs it at once
    rebuilt = row(rt, iid)
    assert rebuilt.status == "ready" and "Lost job" in rebuilt.content["what_is_happening"]


def test_the_sweep_requeues_a_build_whose_worker_died(rt, factory):
    iid = _lost_refresh(rt, factory)
    with db.transaction(rt.factory) as s:
        claimed = summaries.claim(session=s, incident=s.get(Incident, iid), now=rt.clock.now(),
                                  min_interval=timedelta(seconds=30))
    assert claimed.action == "build" and row(rt, iid).status == "building"  # … and then the worker is killed
    rt.clock.advance(minutes=5)
    rt.sweep_once()  # a build may take minutes (a slow model): not presumed dead yet
    assert row(rt, iid).status == "building"
    rt.clock.advance(seconds=summaries.STALE_BUILDING.total_seconds())
    rt.sweep_once()
    assert row(rt, iid).status == "ready"


def test_a_duplicate_job_does_not_rebuild_while_another_builds(rt, factory):
    iid = _lost_refresh(rt, factory)
    with db.transaction(rt.factory) as s:
        summaries.claim(session=s, incident=s.get(Incident, iid), now=rt.clock.now(),
                        min_interval=timedelta(0))
    outcome = summary_job.run_refresh(factory=rt.factory, incident_id=iid, clock=rt.clock.now, lookback_minutes=120,
                                      choose_engine=rt.engine_for_org, later=lambda *a: None)
    assert outcome == "skipped" and row(rt, iid).status == "building"


def test_reading_the_summary_requeues_a_lost_refresh_and_the_card_polls_until_it_lands(client, factory, rt):
    slug = factory.org()
    owner = factory.member(slug, "owner", password=PASSWORD)
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=owner.actor, now=rt.clock.now(),
                               data=IncidentCreate(title="Resolved long ago", services=["api"]))
        incidents.resolve(session=s, incident=inc, now=rt.clock.now(), resolved_at=None, by_label="t", by_user_id=None)
        s.info["deferred"] = []  # the jobs were lost
        iid = inc.id
    assert login(client, owner.email).status_code in (302, 303)

    card = soup(client.get(f"/incidents/{iid}/summary")).select_one("#incident-summary")
    assert card.select(".badge-queued") and card["hx-get"] == f"/incidents/{iid}/summary"  # polls though resolved
    assert "Computed just now by" in card.select_one(".summary-meta").get_text()

    rt.clock.advance(minutes=3)  # nobody picked the refresh up
    client.get(f"/incidents/{iid}/summary")  # looking at it asks again (the test queue runs it after the commit)
    assert row(rt, iid).status == "ready"
    card = soup(client.get(f"/incidents/{iid}/summary")).select_one("#incident-summary")
    assert not card.select(".badge-queued") and not card.has_attr("hx-get")  # resolved and built: polling ends
    assert "was resolved" in card.select_one(".summary-what").get_text()
    assert card.select_one(".summary-built").get_text(" ", strip=True).startswith("Built 2026-11-26 10:03")


def test_the_api_read_requeues_a_lost_refresh_of_its_own_organization_only(client, factory, rt):
    team = factory.team()
    iid = _lost_refresh(rt, factory, team["member"])
    rt.clock.advance(minutes=3)
    stranger = factory.team()["owner"]
    assert client.get(f"/api/v1/incidents/{iid}/summary", headers=stranger.headers).status_code == 404
    assert row(rt, iid).requested_at == rt.clock.now() - timedelta(minutes=3)  # another organization changed nothing
    body = client.get(f"/api/v1/incidents/{iid}/summary", headers=team["viewer"].headers).json()
    assert body["status"] == "queued"  # this read asked again; the next one shows the rebuilt summary
    again = client.get(f"/api/v1/incidents/{iid}/summary", headers=team["viewer"].headers).json()
    assert again["status"] == "ready" and again["generated_at"] == "2026-11-26T10:03:00Z"


def test_a_build_that_breaks_ends_failed_not_updating(client, factory, rt, monkeypatch):
    owner = factory.team()["owner"]
    iid = open_incident(client, owner)

    def broken(*args, **kwargs):
        raise RuntimeError("the analysis tripped")

    monkeypatch.setattr(summary_job.evidence_observe, "observe_cached", broken)
    rt.clock.advance(minutes=1)
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "More"}, headers=owner.headers)
    failed = row(rt, iid)
    assert failed.status == "failed" and "the analysis tripped" in failed.error
    assert failed.content is not None  # the last good summary stays
    body = client.get(f"/api/v1/incidents/{iid}/summary", headers=owner.headers).json()
    assert body["status"] == "failed" and "could not be rebuilt" in body["error"]
    monkeypatch.undo()
    rt.clock.advance(minutes=1)
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "Recovered"}, headers=owner.headers)
    assert row(rt, iid).status == "ready"  # new evidence asks again


def test_the_demo_summaries_are_built_not_left_updating(rt, client):
    from blametrail.demo import DEMO_PASSWORD, PEOPLE, seed_demo

    seed_demo(rt)  # the test queue runs what the seeding queued
    with db.transaction(rt.factory) as s:
        ids = list(s.scalars(select(Incident.id).order_by(Incident.id)))
        rows = {i: summaries.find(session=s, incident_id=i) for i in ids}
    assert ids and all(r is not None and r.status == "ready" and r.content for r in rows.values()), \
        {i: r.status if r else None for i, r in rows.items()}
    observed = [r for r in rows.values() if r.observations and r.observations["metrics"]]
    assert observed  # the generated incidents' metrics came from the demo's (fake) connection
    assert login(client, PEOPLE[0][0], DEMO_PASSWORD).status_code in (302, 303)
    card = soup(client.get(f"/incidents/{ids[0]}")).select_one("#incident-summary")
    assert not card.select(".badge-queued") and card.select_one(".summary-built")
