"""Real concurrency against a real HTTP server: quota, resolve, regenerate, edit and generate races."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate
from blametrail.orgs import service as orgs
from blametrail.orgs.models import MonthlyUsage
from blametrail.postmortems.models import Postmortem, Revision

ROUNDS = 6  # each round is 50 simultaneous requests on a fresh organization (10 took 42 s of CI on PostgreSQL)
PARALLEL = 50


@pytest.fixture
def live_url(app):
    """Serve the app with uvicorn in a background thread on a free loopback port; stop it afterwards."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            lifespan="on", backlog=2048,
                            # why: the crowd's kept-alive connections idle while the next round is prepared; with
                            # uvicorn's 5 s default the server may close one just as a request goes out (reset)
                            timeout_keep_alive=300)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


class Crowd:
    """Worker threads, each with its own httpx.Client (kept for the whole test), firing requests all at once."""

    def __init__(self, base_url: str, size: int) -> None:
        self.base_url = base_url
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="crowd")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        c = getattr(self._local, "client", None)
        if c is None:
            c = self._local.client = httpx.Client(base_url=self.base_url, timeout=120, verify=False)  # plain http
            with self._lock:
                self._clients.append(c)
        return c

    def fire(self, requests: list[tuple[str, str, dict, dict | None]]) -> list[httpx.Response]:
        """Send every request from its own thread, released together by a barrier; return them in order."""
        assert len(requests) <= self.size
        barrier = threading.Barrier(len(requests))

        def one(req):
            method, path, headers, body = req
            c = self._client()
            barrier.wait(timeout=60)
            return c.request(method, path, headers=headers, json=body)

        return list(self._pool.map(one, requests))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for c in self._clients:
            c.close()


@pytest.fixture
def crowd(live_url):
    c = Crowd(live_url, PARALLEL)
    yield c
    c.close()


def warm(client, *members) -> None:
    """Use each token once first: its last_used_at write would otherwise serialize the parallel requests."""
    for m in members:
        assert client.get("/api/v1/org/usage", headers=m.headers).status_code == 200


def statuses(responses: list[httpx.Response]) -> Counter:
    return Counter(r.status_code for r in responses)


def assert_no_5xx(responses: list[httpx.Response]) -> None:
    bad = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not bad, bad


def resolved_incidents_without_postmortem(rt, member, n: int) -> list[int]:
    """Open and resolve n incidents through the service directly, without the auto-trigger hook."""
    now = rt.clock.now()
    ids = []
    with db.transaction(rt.factory) as s:
        for i in range(n):
            inc = incidents.create(session=s, actor=member.actor, now=now,
                                   data=IncidentCreate(title=f"race {i}", services=["checkout"]))
            incidents.resolve(session=s, incident=inc, now=now, resolved_at=None, by_label=member.actor.label,
                              by_user_id=member.actor.user_id)
            ids.append(inc.id)
    return ids


def use_quota(rt, org_slug: str, times: int) -> None:
    with db.transaction(rt.factory) as s:
        org = orgs.get_org_by_slug(session=s, slug=org_slug)
        for _ in range(times):
            orgs.consume_quota(session=s, org=org, now=rt.clock.now())


def count(rt, model, *where) -> int:
    with db.transaction(rt.factory) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_parallel_generate_at_quota_minus_one_creates_exactly_one(crowd, rt, factory, settings, client):
    started, firing = time.monotonic(), 0.0
    for round_no in range(ROUNDS):
        slug = factory.org(plan="starter")
        owner = factory.member(slug, "owner")
        ids = resolved_incidents_without_postmortem(rt, owner, PARALLEL)
        use_quota(rt, slug, 4)  # starter: 4 of 5 used
        warm(client, owner)

        t0 = time.monotonic()
        responses = crowd.fire([("POST", f"/api/v1/incidents/{i}/postmortem", owner.headers, None) for i in ids])
        firing += time.monotonic() - t0

        assert_no_5xx(responses)
        assert statuses(responses) == {202: 1, 402: PARALLEL - 1}, (round_no, statuses(responses))
        for r in responses:
            if r.status_code == 402:
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["type"] == "/problems/quota-exceeded"
                assert "5/5" in r.json()["detail"]
        winner = ids[[r.status_code for r in responses].index(202)]
        assert client.get(f"/api/v1/incidents/{winner}/postmortem", headers=owner.headers).json()["status"] == "draft"
        usage = client.get("/api/v1/org/usage", headers=owner.headers).json()
        assert (usage["used"], usage["limit"]) == (5, 5)
        with db.transaction(rt.factory) as s:
            org = orgs.get_org_by_slug(session=s, slug=slug)
            assert s.scalar(select(func.count()).select_from(Postmortem).where(Postmortem.org_id == org.id)) == 1
            assert s.scalar(select(MonthlyUsage.used).where(MonthlyUsage.org_id == org.id)) == 5
    elapsed = time.monotonic() - started
    print(f"\n[{settings.resolved_database_url.split(':')[0]}] {ROUNDS} rounds x {PARALLEL} parallel generates: "
          f"{elapsed:.1f}s in all, {firing:.1f}s of it in the parallel requests")


def test_parallel_resolutions_resolve_once_and_create_one_postmortem(crowd, live_url, rt, factory, client):
    slug = factory.org(plan="starter")
    owner = factory.member(slug, "owner")
    inc = client.post("/api/v1/incidents", json={"title": "Checkout 500s", "services": ["checkout"]},
                      headers=owner.headers).json()
    resolvers = [factory.member(slug, role) for role in ("owner", "admin", "member") * 7][:20]
    warm(client, *resolvers)

    responses = crowd.fire([("POST", f"/api/v1/incidents/{inc['id']}/resolve", m.headers, None) for m in resolvers])

    assert_no_5xx(responses)
    assert statuses(responses) == {200: 1, 409: 19}
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {"/problems/invalid-state"}
    winner = next(r for r in responses if r.status_code == 200).json()
    winner_email = resolvers[[r.status_code for r in responses].index(200)].email
    assert winner["resolved_by"] == winner_email
    got = client.get(f"/api/v1/incidents/{inc['id']}", headers=owner.headers).json()
    assert got["status"] == "resolved" and got["resolved_by"] == winner_email
    assert count(rt, Postmortem, Postmortem.incident_id == inc["id"]) == 1
    assert client.get("/api/v1/org/usage", headers=owner.headers).json()["used"] == 1
    timeline = client.get(f"/api/v1/incidents/{inc['id']}/timeline", headers=owner.headers).json()
    assert [t["data"].get("status") for t in timeline if t["source"] == "status"] == ["open", "resolved"]


def _draft(client, factory, plan="pro"):
    slug = factory.org(plan=plan)
    owner = factory.member(slug, "owner")
    inc = client.post("/api/v1/incidents", json={"title": "DB failover", "services": ["db"]}, headers=owner.headers).json()
    assert client.post(f"/api/v1/incidents/{inc['id']}/resolve", headers=owner.headers).status_code == 200
    pm = client.get(f"/api/v1/incidents/{inc['id']}/postmortem", headers=owner.headers).json()
    assert pm["status"] == "draft"
    return slug, owner, inc["id"], pm


def test_parallel_regenerates_allow_exactly_one(crowd, live_url, rt, factory, client, clock):
    slug, owner, iid, pm = _draft(client, factory)
    members = [owner] + [factory.member(slug, "member") for _ in range(19)]
    clock.advance(seconds=60)
    warm(client, *members)

    responses = crowd.fire([("POST", f"/api/v1/incidents/{iid}/postmortem/regenerate", m.headers, {})
                                for m in members])

    assert_no_5xx(responses)
    assert statuses(responses) == {202: 1, 429: 19}
    for r in responses:
        if r.status_code == 429:
            assert r.json()["type"] == "/problems/rate-limited"
            assert r.headers["retry-after"] == "60"
    revisions = client.get(f"/api/v1/incidents/{iid}/postmortem/revisions", headers=owner.headers).json()
    assert [r["kind"] for r in revisions] == ["ai", "ai"]
    assert client.get("/api/v1/org/usage", headers=owner.headers).json()["used"] == 1


def test_parallel_edits_on_the_same_version_save_once(crowd, live_url, rt, factory, client):
    slug, owner, iid, pm = _draft(client, factory)
    members = [owner] + [factory.member(slug, "member") for _ in range(19)]
    warm(client, *members)
    before = count(rt, Revision, Revision.postmortem_id == pm["id"])
    bodies = [{"version": pm["version"], "sections": {"summary": f"Summary by editor {n}"}} for n in range(20)]

    responses = crowd.fire([("PATCH", f"/api/v1/incidents/{iid}/postmortem", m.headers, b)
                                for m, b in zip(members, bodies)])

    assert_no_5xx(responses)
    assert statuses(responses) == {200: 1, 409: 19}
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {"/problems/version-conflict"}
    n = [r.status_code for r in responses].index(200)
    now = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert now["version"] == pm["version"] + 1
    assert now["sections"]["summary"] == f"Summary by editor {n}"
    assert now["status"] == "edited"
    assert count(rt, Revision, Revision.postmortem_id == pm["id"]) == before + 1


def test_parallel_generates_for_the_same_incident_create_one(crowd, live_url, rt, factory, client):
    slug = factory.org(plan="pro")
    owner = factory.member(slug, "owner")
    members = [owner] + [factory.member(slug, role) for role in ("admin", "member") * 25][:49]
    (iid,) = resolved_incidents_without_postmortem(rt, owner, 1)
    warm(client, *members)

    responses = crowd.fire([("POST", f"/api/v1/incidents/{iid}/postmortem", m.headers, None) for m in members])

    assert_no_5xx(responses)
    assert statuses(responses) == {202: 1, 409: 49}
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {"/problems/invalid-state"}
    assert count(rt, Postmortem, Postmortem.incident_id == iid) == 1
    assert client.get("/api/v1/org/usage", headers=owner.headers).json()["used"] == 1
    assert client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()["status"] == "draft"
