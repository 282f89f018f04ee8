"""The generation job with a model, through the real job: a fallback is recorded as one, with one log line; the run
shows the step it is at; the deadline holds; the template's owners and instructions reach the draft."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.ai import service as ai_service
from blametrail.engines.builtin import BuiltinEngine
from blametrail.orgs import templates
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun, Postmortem
from tests.ai.test_providers import GOOD
from tests.ai.wire import FakeProvider, openai_error, openai_text, openai_tool_call
from tests.conftest import START
from tests.factories import iso
from tests.web.test_pages import PASSWORD, login, soup

GENEROUS = 20.0  # seconds: "finished well before this", never a tight timing
ANSWER = {**GOOD, "timeline": [], "root_cause": "Deploy v9.1.0 (evidence: deploy_1)."}


@pytest.fixture
def server():
    with FakeProvider() as fp:
        fp.summary_reply = openai_error(400, "this test scripts postmortems only")  # the live summary asks too
        yield fp


def _configure(rt, owner, server, **options) -> None:
    with db.transaction(rt.factory) as s:
        ai_service.put(session=s, actor=owner.actor, box=rt.secret_box, now=rt.clock.now(), engine="openai",
                       model="gpt-test", base_url=server.url + "/v1", api_key="sk-org",
                       options={"timeout_seconds": 5, "max_retries": 0, **options})


def _resolve(client, member) -> int:
    client.post("/api/v1/deploys", headers=member.headers, json={
        "service": "checkout", "environment": "production", "version": "v9.1.0",
        "deployed_at": iso(START - timedelta(minutes=33)), "commits": []}).raise_for_status()
    iid = client.post("/api/v1/incidents", headers=member.headers, json={
        "title": "Checkout errors", "services": ["checkout"],
        "started_at": iso(START - timedelta(minutes=29))}).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/updates", headers=member.headers, json={"body": "Rolling back v9.1.0"})
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=member.headers).raise_for_status()
    return iid


def _run(rt, iid: int) -> GenerationRun:
    with db.transaction(rt.factory) as s:
        pm_id = s.scalar(select(Postmortem.id).where(Postmortem.incident_id == iid))
        run = s.scalars(select(GenerationRun).where(GenerationRun.postmortem_id == pm_id)
                        .order_by(GenerationRun.id.desc())).first()
        s.expunge(run)
        return run


# --- run status -----------------------------------------------------------------------------------------

def test_a_fallback_is_recorded_as_a_fallback_with_one_log_line(client, factory, rt, server, caplog):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    server.script(openai_error(401, "Incorrect API key provided: sk-org"))
    with caplog.at_level(logging.WARNING, logger="blametrail.jobs.generation"):
        iid = _resolve(client, owner)
    run = _run(rt, iid)
    assert run.status == "fallback" and run.engine == "openai:gpt-test"
    assert "rejected the API key (401)" in run.error and "built-in engine's draft" in run.error
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["engine"] == "builtin" and pm["status"] == "draft"
    lines = [r.getMessage() for r in caplog.records if r.name == "blametrail.jobs.generation"
             and r.levelno == logging.WARNING]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "the openai:gpt-test engine failed" in lines[0] and "rejected the API key (401)" in lines[0]
    assert "sk-org" not in lines[0]


def test_a_model_draft_is_recorded_as_succeeded(client, factory, rt, server, caplog):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    server.script(openai_tool_call(ANSWER))
    with caplog.at_level(logging.WARNING, logger="blametrail.jobs.generation"):
        iid = _resolve(client, owner)
    run = _run(rt, iid)
    assert (run.status, run.error) == ("succeeded", None)
    assert not [r for r in caplog.records if r.name == "blametrail.jobs.generation"]


def test_the_runs_api_shows_the_fallback_status(client, factory, rt, server):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    server.script(openai_error(401, "bad key"))
    iid = _resolve(client, owner)
    runs = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=owner.headers).json()
    assert [r["status"] for r in runs] == ["fallback"]
    pw = factory.member(owner.org_slug, "owner", password=PASSWORD)
    assert login(client, pw.email).status_code == 303
    page = client.get(f"/incidents/{iid}/postmortem/revisions")
    statuses = [row.select("td")[2].get_text(strip=True) for row in soup(page).select("table.runs tr.run-row")]
    assert page.status_code == 200 and statuses == ["fallback"]


# --- progress steps -----------------------------------------------------------------------------------------

def test_the_run_records_each_step_in_its_own_transaction(client, factory, rt, server, monkeypatch):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    recorded: list[str] = []
    real = postmortems.set_step

    def recording(**kwargs):
        recorded.append(kwargs["step"])
        return real(**kwargs)

    monkeypatch.setattr(postmortems, "set_step", recording)
    seen_by_others: list[tuple[str, object]] = []

    def while_the_model_writes(body):
        # another connection, while the model call is in flight: the step is already committed
        with db.transaction(rt.factory) as s:
            run = s.scalars(select(GenerationRun).where(GenerationRun.status == "running")).one()
            seen_by_others.append((run.step, run.step_at))

    server.on_request = while_the_model_writes
    server.script(openai_tool_call(ANSWER))
    iid = _resolve(client, owner)
    assert recorded == ["asking_model", "checking_citations", "storing"]
    assert [step for step, _ in seen_by_others] == ["asking_model"] and seen_by_others[0][1] is not None
    run = _run(rt, iid)
    assert run.status == "succeeded" and run.step == "storing" and run.step_at is not None


def test_the_builtin_engine_reports_writing_then_storing(client, factory, rt, monkeypatch):
    owner = factory.team()["owner"]
    recorded: list[str] = []
    real = postmortems.set_step
    monkeypatch.setattr(postmortems, "set_step", lambda **kw: recorded.append(kw["step"]) or real(**kw))
    iid = _resolve(client, owner)
    # "gathering" is set when the run is claimed; the card shows "asking_model" as "Writing the draft" here
    assert recorded == ["asking_model", "storing"]
    assert _run(rt, iid).status == "succeeded"


def test_a_claim_starts_at_gathering_and_set_step_is_fenced(client, factory, rt, clock):
    owner = factory.team()["owner"]
    client.patch("/api/v1/org/settings", json={"ai_enabled": False}, headers=owner.headers)
    iid = client.post("/api/v1/incidents", json={"title": "API down", "services": ["api"]},
                      headers=owner.headers).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    client.patch("/api/v1/org/settings", json={"ai_enabled": True}, headers=owner.headers)
    with db.transaction(rt.factory) as s:
        pm_id = postmortems.request_generation(session=s, actor=owner.actor, incident_id=iid, now=clock.now()).id
        s.info["deferred"] = []  # the test drives the generation by hand
    with db.transaction(rt.factory) as s:
        pm, run = postmortems.claim(session=s, pm_id=pm_id, engine="builtin", worker="w", now=clock.now())
        assert (run.step, run.step_at) == ("gathering", clock.now())
        attempt, run_id = pm.attempt, run.id
    clock.advance(seconds=3)
    with db.transaction(rt.factory) as s:
        assert postmortems.set_step(session=s, pm_id=pm_id, attempt=attempt, run_id=run_id, step="asking_model",
                                    now=clock.now()) is True
        with pytest.raises(ValueError, match="unknown generation step"):
            postmortems.set_step(session=s, pm_id=pm_id, attempt=attempt, run_id=run_id, step="dreaming", now=clock.now())
        assert postmortems.set_step(session=s, pm_id=pm_id, attempt=attempt + 1, run_id=run_id, step="storing",
                                    now=clock.now()) is False  # another attempt's run: fenced out
    with db.transaction(rt.factory) as s:
        run = s.get(GenerationRun, run_id)
        assert (run.step, run.step_at) == ("asking_model", clock.now())
        postmortems.fail(session=s, pm_id=pm_id, attempt=attempt, run_id=run_id, error="x", evidence=None,
                         now=clock.now())
    with db.transaction(rt.factory) as s:
        assert postmortems.set_step(session=s, pm_id=pm_id, attempt=attempt, run_id=run_id, step="storing",
                                    now=clock.now()) is False  # an ended run keeps its last step


# --- the deadline, through the real job -------------------------------------------------------------------

def test_past_the_deadline_the_builtin_draft_is_stored_as_a_fallback(client, factory, rt, server, monkeypatch):
    for name, value in {"ai_engine": "openai", "ai_model": "gpt-test", "openai_base_url": server.url + "/v1",
                        "ai_output_mode": "prompted", "ai_deadline_seconds": 1.0}.items():
        monkeypatch.setattr(rt.settings, name, value)
    server.script(openai_text('{"summary": "' + "still writing " * 500, chunk_chars=8, chunk_delay=0.05))
    owner = factory.team()["owner"]
    started = time.monotonic()
    iid = _resolve(client, owner)
    assert time.monotonic() - started < GENEROUS
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["engine"] == "builtin" and pm["sections"]["summary"]
    assert "the model did not answer within 1 s" in pm["error"]
    run = _run(rt, iid)
    assert run.status == "fallback" and "the model did not answer within 1 s" in run.error


# --- the template reaches the draft -------------------------------------------------------------------------

def test_the_templates_owners_and_instructions_reach_the_engine_and_the_prompt(client, factory, rt, server):
    owner = factory.team()["owner"]
    with db.transaction(rt.factory) as s:
        templates.put(session=s, actor=owner.actor, now=rt.clock.now(), data={
            "service_owners": {"checkout": "Payments team"},
            "section_instructions": {"summary": "Two sentences for executives, no jargon."}})

    class Recording(BuiltinEngine):
        label = "recording"
        contexts: list = []

        def draft(self, pack, context=None):
            self.contexts.append(context)
            return super().draft(pack, context)

    rt.engine_override = Recording()
    try:
        _resolve(client, owner)
    finally:
        rt.engine_override = None
    (context,) = Recording.contexts
    assert dict(context.service_owners) == {"checkout": "Payments team"}
    assert dict(context.instructions) == {"summary": "Two sentences for executives, no jargon."}

    _configure(rt, owner, server)
    server.script(openai_tool_call(ANSWER))
    iid = _resolve(client, owner)
    user = server.requests[0]["json"]["messages"][-1]["content"]
    assert "- summary: Two sentences for executives, no jargon." in user
    before = user[:user.index("- summary: Two sentences")]
    assert before.count("<evidence") == before.count("</evidence>")  # an instruction, outside every evidence block
    assert _run(rt, iid).prompt["user"] == user  # the audit keeps the prompt that was sent


def test_the_templates_extra_sections_reach_the_prompt_and_only_they_are_kept(client, factory, rt, server):
    owner = factory.team()["owner"]
    with db.transaction(rt.factory) as s:
        templates.put(session=s, actor=owner.actor, now=rt.clock.now(), data={"extra_sections": [
            {"key": "customer_comms", "title": "Customer communication", "instruction": "Who was told what, when."}]})
    _configure(rt, owner, server)
    server.script(openai_tool_call({**ANSWER, "extra": {"customer_comms": "Status page updated (evidence: deploy_1).",
                                                        "invented": "A section nobody asked for."}}))
    iid = _resolve(client, owner)
    user = server.requests[0]["json"]["messages"][-1]["content"]
    assert "- customer_comms (Customer communication): Who was told what, when." in user
    assert "Use no other keys in `extra`." in user
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["engine"].startswith("openai:"), pm
    assert pm["sections"]["extra"] == {"customer_comms": "Status page updated (evidence: deploy_1)."}


# an organization whose SEV-1 is any customer-facing problem on one service, however short (built-in: far more)
STRICT_SCALE = [
    {"severity": "SEV-1", "meaning": "Anything a customer can notice, at once.", "rules": [{"min_minutes": 0}]},
    {"severity": "SEV-4", "meaning": "Everything else.", "rules": [{"min_minutes": 0}]},
]


def test_the_templates_severity_definitions_rate_every_draft_and_reach_the_prompt(client, factory, rt, server):
    owner = factory.team()["owner"]
    builtin_iid = _resolve(client, owner)
    builtin = client.get(f"/api/v1/incidents/{builtin_iid}/postmortem", headers=owner.headers).json()
    assert builtin["sections"]["severity"] != "SEV-1"  # the built-in scale: a short incident is not critical

    with db.transaction(rt.factory) as s:
        templates.put(session=s, actor=owner.actor, now=rt.clock.now(), data={"severity_definitions": STRICT_SCALE})
    iid = _resolve(client, owner)
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["engine"] == "builtin" and pm["sections"]["severity"] == "SEV-1"  # the built-in writer rates by it

    _configure(rt, owner, server)
    server.script(openai_tool_call({**ANSWER, "severity": "SEV-4"}))
    iid = _resolve(client, owner)
    user = server.requests[0]["json"]["messages"][-1]["content"]
    assert "# This organization's severity levels" in user and "- SEV-1: Anything a customer can notice" in user
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["engine"].startswith("openai:") and pm["sections"]["severity"] == "SEV-1"  # grounding rates by it too
