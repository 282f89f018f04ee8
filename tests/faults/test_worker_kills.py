"""kill -9 twenty workers in the middle of an LLM generation: twenty drafts, none twice, none stuck, no extra calls.

The workers run the real LLM engine (BLAMETRAIL_AI_ENGINE=openai) against a local OpenAI-compatible server that holds
each postmortem call open, so every kill lands while the model is "thinking". Kills go in rounds of four workers
(one generation each). The sweep re-queues a generation once its heartbeat stops; the last four workers draft them.
"""

from __future__ import annotations

import contextlib

import pytest

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.jobs.queue import make_huey
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.service import GENERATE_TASK
from blametrail.runtime import build_runtime
from tests.ai.test_providers import GOOD, openai_tool_call
from tests.factories import Factory
from tests.faults.support import (
    LocalOpenAI,
    blametrail_env,
    open_incidents,
    postmortem_outcomes,
    settled,
    wait_until,
)

pytestmark = pytest.mark.slow
POSTMORTEMS = 20
ROUND = 4  # workers killed together
ROUNDS = 5


def _resolve_all(rt, member, ids: list[int]) -> list[int]:
    """Resolve the incidents (their jobs go nowhere: the test enqueues the generations); return postmortem ids."""
    pm_ids = []
    with db.transaction(rt.factory) as s:
        for iid in ids:
            incident = incidents.get_or_404(session=s, org_id=member.actor.org_id, incident_id=iid)
            postmortems.resolve_incident(session=s, incident=incident, now=rt.clock.now(), resolved_at=None,
                                         by_label=member.actor.label, by_user_id=member.actor.user_id)
            pm_ids.append(postmortems.find(session=s, org_id=member.actor.org_id, incident_id=iid).id)
    return pm_ids


def test_twenty_workers_killed_mid_generation_give_twenty_drafts(procs, settings, redis_url, tmp_path):
    assert ROUND * ROUNDS == POSTMORTEMS
    queue_url = redis_url or f"sqlite:///{tmp_path / 'queue.db'}"
    make_huey(queue_url).flush()
    with contextlib.ExitStack() as cleanup:
        rt = build_runtime(settings, migrate=False, queue_url="memory://")  # services only: nothing consumes it
        cleanup.callback(rt.close)
        queue_rt = build_runtime(settings, migrate=False, queue_url=queue_url)
        cleanup.callback(queue_rt.close)
        llm = cleanup.enter_context(LocalOpenAI(openai_tool_call(GOOD)["json"]))
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member")
        ids = open_incidents(rt, member, POSTMORTEMS)
        for pm_id in _resolve_all(rt, member, ids):
            queue_rt.enqueue(GENERATE_TASK, (pm_id,))  # what the web's dispatcher does after its commit

        env = blametrail_env(data_dir=settings.data_dir, database_url=settings.resolved_database_url,
                             queue_url=queue_url, ai_engine="openai", ai_model="gpt-test",
                             openai_base_url=llm.base_url, openai_api_key="sk-test", ai_max_retries=0,
                             ai_timeout_seconds=300, generation_heartbeat_seconds=0.5, stale_generation_seconds=4,
                             sweep_interval_seconds=0.5)
        workers = procs.fork_server("workers", "worker", "--threads", "1", env=env, preload=["tests.faults.warm_llm"])
        llm.hold_calls()
        crashes = 0
        for round_ in range(ROUNDS):
            pids = [workers.fork() for _ in range(ROUND)]
            # one thread each: ROUND calls held means every one of these workers is mid-generation
            wait_until(lambda: llm.holding == ROUND, what=f"round {round_ + 1}: {ROUND} generations in flight",
                       watch=[workers.proc])
            for pid in pids:
                assert workers.kill9(pid) == -9
                crashes += 1
            wait_until(lambda: llm.holding == 0, what="the killed workers' calls to end", watch=[workers.proc])
        assert crashes == llm.abandoned == POSTMORTEMS

        llm.release()
        survivors = [workers.fork() for _ in range(ROUND)]
        outcomes = wait_until(lambda: settled(o := postmortem_outcomes(rt.factory, ids)) and o,
                              what="every postmortem to be drafted", timeout=240, watch=[workers.proc])
        assert all(workers.exit_status(pid) is None for pid in survivors)
        calls = llm.calls["postmortem"]

    abandoned = 0
    for iid, o in outcomes.items():
        *killed, final = o["runs"]
        assert (o["postmortems"], o["status"], final, o["ai_revisions"]) == (1, "draft", "succeeded", 1), (iid, o)
        assert set(killed) <= {"abandoned"} and o["attempt"] == len(o["runs"]), (iid, o)
        abandoned += len(killed)
    assert abandoned == crashes  # every killed attempt, and only those, is marked abandoned
    # one call per draft plus the one each crash cut short: a crash costs at most one extra model call
    assert calls == POSTMORTEMS + crashes
