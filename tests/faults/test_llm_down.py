"""The LLM provider is down: a real worker process stores the built-in draft, labelled, with the provider's error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun
from blametrail.runtime import build_runtime
from tests.factories import Factory
from tests.faults.support import blametrail_env, free_port, open_incidents, postmortem_outcomes, settled, wait_until

pytestmark = pytest.mark.slow


def test_provider_down_gives_the_builtin_draft_with_the_providers_error(procs, settings, tmp_path):
    if not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("runs in the SQLite pass only: the fallback does not depend on the database or the queue")
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = blametrail_env(data_dir=settings.data_dir, database_url=settings.resolved_database_url, queue_url=queue_url,
                         ai_engine="openai", ai_model="gpt-test", openai_base_url=closed, openai_api_key="sk-test",
                         ai_max_retries=1, ai_timeout_seconds=5)
    worker = procs.blametrail("worker", "worker", "--threads", "1", env=env)
    rt = build_runtime(settings, migrate=False, queue_url=queue_url)  # enqueues; the worker process drafts
    try:
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member")
        (iid,) = open_incidents(rt, member, 1)
        with db.transaction(rt.factory) as s:
            incident = incidents.get_or_404(session=s, org_id=member.actor.org_id, incident_id=iid)
            postmortems.resolve_incident(session=s, incident=incident, now=rt.clock.now(), resolved_at=None,
                                         by_label=member.actor.label, by_user_id=member.actor.user_id)
        outcome = wait_until(lambda: settled(o := postmortem_outcomes(rt.factory, [iid])) and o[iid],
                             what="the draft", timeout=120, watch=[worker])
        assert (outcome["status"], outcome["engine"], outcome["runs"]) == ("draft", "builtin", ["fallback"])
        assert f"OpenAI-compatible server at {closed} could not be reached" in outcome["error"]
        assert "built-in engine's draft" in outcome["error"]
        with db.transaction(rt.factory) as s:
            run = s.scalar(select(GenerationRun).where(GenerationRun.postmortem_id == outcome["id"]))
            assert run.engine == "openai:gpt-test" and "could not be reached" in run.error
            assert run.prompt and run.response_raw is None  # what would have been sent is kept for the audit
    finally:
        rt.close()
