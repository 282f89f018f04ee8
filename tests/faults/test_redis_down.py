"""Redis goes down: pages and the API keep answering, incidents resolved meanwhile get drafted once it is back."""

from __future__ import annotations

import os
import shutil
import time

import httpx
import pytest
from bs4 import BeautifulSoup

from blametrail.runtime import build_runtime
from tests.factories import Factory
from tests.faults.support import (
    PASS_TWO_ONLY,
    PrivateRedis,
    blametrail_env,
    need,
    open_incidents,
    postmortem_outcomes,
    settled,
    start_server,
    wait_until,
)

pytestmark = pytest.mark.slow
PASSWORD = "correct-horse-battery"


def _answers(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 400, f"{r.request.method} {r.request.url} answered {r.status_code}: {r.text[:500]}"
    return r


def _login(c: httpx.Client, email: str) -> None:
    page = _answers(c.get("/login"))
    token = BeautifulSoup(page.text, "html.parser").select_one("form[action='/login'] input[name=csrftoken]")["value"]
    r = _answers(c.post("/login", data={"email": email, "password": PASSWORD, "csrftoken": token}))
    assert r.status_code == 303 and r.headers["location"] != "/login", r.text[:300]


def _drafted_once(outcomes: dict) -> dict:
    return {iid: (o["status"], o["attempt"], o["runs"], o["ai_revisions"]) for iid, o in outcomes.items()}


def test_pages_answer_while_redis_is_down_and_jobs_resume_when_it_returns(procs, settings):
    if not os.environ.get("BLAMETRAIL_TEST_DATABASE_URL"):
        pytest.skip(PASS_TWO_ONLY)
    redis = PrivateRedis(procs, need(shutil.which("redis-server"), "redis-server"))
    redis.start()
    rt = build_runtime(settings, migrate=False, queue_url="memory://")  # reads the database; enqueues nothing
    try:
        f = Factory(rt)
        member = f.member(f.org(plan="pro"), "member", password=PASSWORD)
        before, *during = open_incidents(rt, member, 4)
        env = blametrail_env(data_dir=settings.data_dir, database_url=settings.resolved_database_url,
                             queue_url=redis.url, embedded_workers=0, monitor_scheduler="false",
                             stale_queued_seconds=5, sweep_interval_seconds=0.5)
        base, web = start_server(procs, env)
        worker = procs.blametrail("worker", "worker", "--threads", "2", env=env)

        with httpx.Client(base_url=base, headers=member.headers, timeout=60) as api:
            _answers(api.post(f"/api/v1/incidents/{before}/resolve"))
            wait_until(lambda: settled(postmortem_outcomes(rt.factory, [before])), what="the first draft",
                       watch=[web, worker])

            redis.kill()
            down_at = time.monotonic()
            # the API: reads, an update (its summary refresh cannot be queued), resolves (their drafts cannot be)
            _answers(api.get("/healthz"))
            _answers(api.get("/api/v1/incidents"))
            _answers(api.get(f"/api/v1/incidents/{before}/postmortem"))
            _answers(api.post(f"/api/v1/incidents/{during[0]}/updates", json={"body": "Redis is down too."}))
            _answers(api.post(f"/api/v1/incidents/{during[0]}/resolve"))
            _answers(api.post(f"/api/v1/incidents/{during[1]}/resolve"))
        with httpx.Client(base_url=base, timeout=60) as browser:
            _login(browser, member.email)
            for path in ("/incidents", f"/incidents/{before}", f"/incidents/{during[2]}",
                         f"/incidents/{during[2]}/summary", f"/incidents/{before}/postmortem/revisions",
                         f"/incidents/{before}/postmortem/export.md"):
                _answers(browser.get(path))
            resolved = _answers(browser.post(f"/incidents/{during[2]}/resolve",
                                             data={"csrftoken": browser.cookies["csrftoken"], "confirm": "yes"}))
            assert resolved.status_code == 303
            _answers(browser.get(resolved.headers["location"]))

        print(f"while Redis was down: 16 requests answered in {time.monotonic() - down_at:.1f} s")
        assert "could not enqueue generate_postmortem" in web.log()  # the enqueue was tried, failed, and was logged
        waiting = postmortem_outcomes(rt.factory, during)
        assert {iid: o["status"] for iid, o in waiting.items()} == dict.fromkeys(during, "queued")
        assert web.alive() and worker.alive()

        redis.start()  # an empty Redis on the same port: whatever was queued before the crash is gone too
        after = wait_until(lambda: settled(o := postmortem_outcomes(rt.factory, [before, *during])) and o,
                           what="the drafts after Redis came back", timeout=180, watch=[web, worker])
        assert _drafted_once(after) == dict.fromkeys([before, *during], ("draft", 1, ["succeeded"], 1))
    finally:
        rt.close()
        redis.destroy()
