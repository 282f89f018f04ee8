"""The web process dies between the commit and the enqueue, twenty times: the sweep still drafts every postmortem."""

from __future__ import annotations

import httpx
import pytest

from blametrail.jobs.queue import make_huey
from blametrail.postmortems.service import GENERATE_TASK
from blametrail.runtime import build_runtime
from tests.factories import Factory
from tests.faults.support import (
    blametrail_env,
    free_port,
    healthy,
    open_incidents,
    postmortem_outcomes,
    settled,
    wait_until,
)

pytestmark = pytest.mark.slow
DEATHS = 20


def _queued_generations(queue) -> list[tuple]:
    """Return the arguments of the generation jobs waiting in the queue."""
    messages = [queue.serializer.deserialize(raw) for raw in queue.storage.enqueued_items()]
    return [m.args for m in messages if m.name.rsplit(".", 1)[-1] == GENERATE_TASK]


def test_twenty_deaths_between_commit_and_enqueue_still_give_twenty_drafts(procs, settings, redis_url, tmp_path):
    queue_url = redis_url or f"sqlite:///{tmp_path / 'queue.db'}"
    queue = make_huey(queue_url)
    queue.flush()
    rt = build_runtime(settings, migrate=False, queue_url="memory://")  # reads the database; enqueues nothing
    try:
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member")
        ids = open_incidents(rt, member, DEATHS)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = blametrail_env(data_dir=settings.data_dir, database_url=settings.resolved_database_url,
                             queue_url=queue_url, embedded_workers=0, monitor_scheduler="false")
        web = procs.fork_server("serve", "serve", "--port", str(port), env=env, die_after_commit=GENERATE_TASK)
        for n, iid in enumerate(ids, 1):
            pid = web.fork()
            wait_until(lambda: healthy(base) or web.exit_status(pid) is not None, what=f"web process #{n} to answer",
                       watch=[web.proc])
            with pytest.raises(httpx.TransportError):  # no answer: it died after committing, before answering
                httpx.post(f"{base}/api/v1/incidents/{iid}/resolve", headers=member.headers, timeout=30)
            assert web.wait_exit(pid) == 137
        assert web.proc.log().count(f"exiting before enqueuing {GENERATE_TASK}") == DEATHS

        before = postmortem_outcomes(rt.factory, ids)
        assert {iid: o["status"] for iid, o in before.items()} == dict.fromkeys(ids, "queued")  # committed …
        assert _queued_generations(queue) == []  # … and never enqueued

        worker_env = {**env, "BLAMETRAIL_STALE_QUEUED_SECONDS": "5", "BLAMETRAIL_SWEEP_INTERVAL_SECONDS": "0.5"}
        worker = procs.blametrail("worker", "worker", "--threads", "2", env=worker_env)
        after = wait_until(lambda: settled(o := postmortem_outcomes(rt.factory, ids)) and o,
                           what="the sweep to get every postmortem drafted", timeout=180, watch=[worker])
        for iid, o in after.items():
            assert (o["postmortems"], o["status"], o["attempt"], o["runs"], o["ai_revisions"]) == (
                1, "draft", 1, ["succeeded"], 1), (iid, o)
    finally:
        rt.close()
