"""The live summary: the built-in writer cites evidence; the endpoint is org-scoped; updates refresh it; the page shows it."""

from __future__ import annotations

from datetime import timedelta

from blametrail import db
from blametrail.engines.base import Summary
from blametrail.engines.summary import SummaryOut, ground_summary, write_summary
from blametrail.jobs import summary as summary_job
from blametrail.summaries import service as summary
from blametrail.summaries.models import IncidentSummary
from blametrail.summaries.service import summarize_with
from tests.ai import make_pack
from tests.summaries.helpers import open_incident, run_scheduled, scheduled
from tests.web.test_pages import PASSWORD, login, soup


def test_builtin_summary_cites_evidence():
    pack = make_pack(resolved=False)
    out = write_summary(pack)
    SummaryOut.model_validate(out)
    valid = pack.evidence_ids()
    assert out["citations"] and set(out["citations"]) <= valid
    assert "upd_2" in out["what_is_happening"] and "alert_1" in out["what_is_happening"]
    assert out["suspects"][0]["evidence"][0] == "deploy_1"
    assert all(set(s["evidence"]) <= valid for s in out["suspects"] + out["tried"])
    assert any("upd_2" in t["evidence"] for t in out["tried"])  # "Rolled back …" is something tried
    assert "metric_1" in out["impact_so_far"] and "log_1" in out["impact_so_far"]
    assert write_summary(pack) == out  # deterministic


def test_engine_summary_is_grounded_and_falls_back_on_error():
    pack = make_pack(resolved=False)

    class Model:
        label = "fake:model"

        def summarize(self, pack):
            return Summary({"what_is_happening": "Bob broke it (upd_999).", "impact_so_far": "bad", "suspects": [
                {"text": "Bob", "evidence": ["upd_999"]}, {"text": "The deploy", "evidence": ["deploy_1"]}],
                "tried": [], "citations": ["upd_999", "deploy_1"], "extra": "<script>"})

    content, label, error = summarize_with(Model(), pack)
    assert label == "fake:model" and error is None
    assert content["suspects"] == [{"text": "The deploy", "evidence": ["deploy_1"]}]
    assert "upd_999" not in str(content) and "extra" not in content

    class Broken:
        label = "fake:broken"

        def summarize(self, pack):
            raise RuntimeError("provider said 401")

    content, label, error = summarize_with(Broken(), pack)
    assert label == "builtin" and "provider said 401" in error and content == write_summary(pack)
    assert ground_summary({}, pack)["citations"] == []


def test_endpoint_is_org_scoped_and_refreshes_when_an_update_is_posted(client, factory, rt):
    team = factory.team()
    other = factory.team()
    incident_id = open_incident(client, team["member"])
    first = client.get(f"/api/v1/incidents/{incident_id}/summary", headers=team["viewer"].headers)
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "ready" and body["engine"] == "builtin" and body["generated_at"]
    assert "Checkout down" in body["content"]["what_is_happening"]

    assert client.get(f"/api/v1/incidents/{incident_id}/summary", headers=other["owner"].headers).status_code == 404
    assert client.get("/api/v1/incidents/999999/summary", headers=team["owner"].headers).status_code == 404

    posted = client.post(f"/api/v1/incidents/{incident_id}/updates",
                         json={"body": "Rolled back checkout to v2.2, errors dropping."}, headers=team["member"].headers)
    assert posted.status_code == 201
    upd = posted.json()["evidence_id"]
    # built a moment ago: the refresh waits for the minimum interval, the last summary stays on show meanwhile
    waiting = client.get(f"/api/v1/incidents/{incident_id}/summary", headers=team["member"].headers).json()
    assert waiting["status"] == "queued" and waiting["content"] == body["content"]
    assert scheduled(rt) == [(summary.TASK, (incident_id,))]
    rt.clock.advance(seconds=rt.settings.summary_min_interval_seconds)
    assert run_scheduled(rt) == 1
    after = client.get(f"/api/v1/incidents/{incident_id}/summary", headers=team["member"].headers).json()
    assert after["status"] == "ready"
    assert upd in after["content"]["citations"]
    assert "Rolled back checkout" in after["content"]["what_is_happening"]
    assert any(upd in t["evidence"] for t in after["content"]["tried"])


def test_requests_are_debounced_while_one_is_queued(rt, factory):
    from blametrail.incidents import service as incidents
    from blametrail.incidents.schemas import IncidentCreate, UpdateCreate

    team = factory.team()
    actor = team["member"].actor
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=actor, data=IncidentCreate(title="x", services=["api"]), now=rt.clock.now())
        incidents.add_update(session=s, actor=actor, incident=inc, data=UpdateCreate(body="one"), now=rt.clock.now())
        incidents.add_update(session=s, actor=actor, incident=inc, data=UpdateCreate(body="two"), now=rt.clock.now())
        assert [t for t, _ in s.info["deferred"] if t == summary.TASK] == [summary.TASK]
        incident_id = inc.id
    with db.transaction(rt.factory) as s:
        row = summary.find(session=s, incident_id=incident_id)
        assert isinstance(row, IncidentSummary) and row.status == "ready"
        assert "two" in row.content["what_is_happening"]


def test_page_shows_the_summary_and_polls_while_open(client, factory, rt):
    slug = factory.org()
    owner = factory.member(slug, "owner", password=PASSWORD)
    incident_id = open_incident(client, owner, title="Payments degraded")
    client.post(f"/api/v1/incidents/{incident_id}/updates", json={"body": "Restarted the payment pool."},
                headers=owner.headers)
    rt.clock.advance(minutes=1)
    run_scheduled(rt)
    assert login(client, owner.email).status_code in (302, 303)
    page = soup(client.get(f"/incidents/{incident_id}"))
    card = page.select_one("#incident-summary")
    assert card is not None
    assert "Payments degraded" in card.select_one(".summary-what").get_text()
    assert card["hx-get"] == f"/incidents/{incident_id}/summary" and card["hx-trigger"] == "every 5s"
    assert card.select(".summary-tried li")
    cited = card.select(".summary-tried a.cite-link")  # cited like the postmortem: a label, never a raw id
    assert cited and all(a["href"].startswith(f"/incidents/{incident_id}/evidence/") for a in cited)
    assert cited[0].get_text().startswith(f"Update from {owner.email}")
    assert not card.select("a[href^='#']")
    assert card.select_one(".summary-built").get_text(" ", strip=True).startswith("Built 2026-11-26 10:01")
    assert card.select_one(".summary-engine").get_text() == "the built-in writer"
    assert not card.select(".badge-queued")
    fragment = client.get(f"/incidents/{incident_id}/summary")
    assert fragment.status_code == 200 and 'id="incident-summary"' in fragment.text and "<html" not in fragment.text


def test_resolving_refreshes_the_summary_to_say_it_ended(client, factory, rt):
    owner = factory.team()["owner"]
    iid = client.post("/api/v1/incidents", json={"title": "Queue backlog", "services": ["api"]},
                      headers=owner.headers).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "Scaling consumers."}, headers=owner.headers)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers).raise_for_status()
    rt.clock.advance(minutes=1)
    run_scheduled(rt)
    body = client.get(f"/api/v1/incidents/{iid}/summary", headers=owner.headers).json()
    text = str(body["content"])
    assert "was resolved" in text and "is open" not in text


def test_evidence_arriving_while_the_summary_is_written_queues_another_refresh(rt, factory):
    """The job reads the evidence, writes the summary outside any transaction, then checks nothing moved meanwhile."""
    from blametrail.incidents import service as incidents
    from blametrail.incidents.schemas import IncidentCreate, UpdateCreate

    actor = factory.team()["member"].actor
    with db.transaction(rt.factory) as s:
        incident_id = incidents.create(session=s, actor=actor, data=IncidentCreate(title="x", services=["api"]),
                                       now=rt.clock.now()).id
        s.info["deferred"] = []

    class PostsWhileWriting:
        label = "fake:slow"

        def summarize(self, pack):
            with db.transaction(rt.factory) as s:  # a person posts an update while the model is writing
                inc = incidents.get_or_404(session=s, org_id=actor.org_id, incident_id=incident_id)
                incidents.add_update(session=s, actor=actor, incident=inc, data=UpdateCreate(body="late news"),
                                     now=rt.clock.now())
                s.info["deferred"] = []
            return Summary(write_summary(pack))

    asked: list = []

    def later(incident_id, delay):
        asked.append((incident_id, delay))

    outcome = summary_job.run_refresh(factory=rt.factory, incident_id=incident_id, clock=rt.clock.now,
                                      lookback_minutes=120, choose_engine=lambda s, org_id: PostsWhileWriting(),
                                      later=later, min_interval_seconds=30)
    assert outcome == "requeued" and asked == [(incident_id, 30.0)]  # not back to back: one interval later
    with db.transaction(rt.factory) as s:
        row = summary.find(session=s, incident_id=incident_id)
        assert row.status == "queued" and row.requested_at == rt.clock.now() + timedelta(seconds=30)
        assert "late news" not in row.content["what_is_happening"]
    early = summary_job.run_refresh(factory=rt.factory, incident_id=incident_id, clock=rt.clock.now,
                                    lookback_minutes=120, choose_engine=rt.engine_for_org, later=later,
                                    min_interval_seconds=30)
    assert early == "waiting" and asked[-1] == (incident_id, 30.0)
    rt.clock.advance(seconds=30)
    again = summary_job.run_refresh(factory=rt.factory, incident_id=incident_id, clock=rt.clock.now,
                                    lookback_minutes=120, choose_engine=rt.engine_for_org, later=later,
                                    min_interval_seconds=30)
    assert again == "ready"
    with db.transaction(rt.factory) as s:
        row = summary.find(session=s, incident_id=incident_id)
        assert row.status == "ready" and "late news" in row.content["what_is_happening"]
    quiet = summary_job.run_refresh(factory=rt.factory, incident_id=incident_id, clock=rt.clock.now,
                                    lookback_minutes=120, choose_engine=rt.engine_for_org, later=later)
    assert quiet == "skipped"  # nothing was asked for: a duplicate job does not rebuild
