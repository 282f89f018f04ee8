"""Idempotency-Key on API POSTs: retries replay one response, concurrent duplicates never act twice, keys expire;
a retry re-checks the caller's role and never shows a secret twice."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from blametrail import db
from blametrail.incidents.models import Incident
from blametrail.orgs import idempotency as keys
from blametrail.orgs import service as orgs
from blametrail.orgs.models import IdempotencyRecord
from blametrail.web import idempotency
from blametrail.web.deps import api_actor
from blametrail.webhooks.models import Webhook
from tests.live import serving
from tests.security.routes_support import ROUTES

INCIDENT = {"title": "Checkout is down", "severity": "SEV-2", "services": ["checkout"]}


def incident_count(rt, org_id: int | None = None) -> int:
    with db.transaction(rt.factory) as s:
        query = select(func.count(Incident.id))
        if org_id is not None:
            query = query.where(Incident.org_id == org_id)
        return s.scalar(query)


def keyed(member, key: str) -> dict:
    return {**member.headers, "Idempotency-Key": key}


@pytest.fixture
def owner(factory):
    return factory.member(factory.org())


def test_twenty_sequential_retries_create_one_incident_and_answer_alike(client, rt, owner):
    responses = [client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "create-1")) for _ in range(20)]
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert {r.headers["content-type"] for r in responses} == {"application/json"}
    assert "idempotent-replayed" not in responses[0].headers
    assert all(r.headers["idempotent-replayed"] == "true" for r in responses[1:])
    assert incident_count(rt) == 1


def test_without_a_key_every_post_acts(client, rt, owner):
    first = client.post("/api/v1/incidents", json=INCIDENT, headers=owner.headers)
    second = client.post("/api/v1/incidents", json=INCIDENT, headers=owner.headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert incident_count(rt) == 2


def test_same_key_with_another_body_or_path_is_refused(client, rt, owner):
    assert client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "k")).status_code == 201
    other_body = client.post("/api/v1/incidents", json={**INCIDENT, "title": "Other"}, headers=keyed(owner, "k"))
    assert other_body.status_code == 422
    assert other_body.headers["content-type"] == "application/problem+json"
    assert other_body.json()["type"] == "/problems/idempotency-mismatch"
    assert "Idempotency-Key reused with a different request" in other_body.json()["detail"]
    incident_id = client.get("/api/v1/incidents", headers=owner.headers).json()["items"][0]["id"]
    other_path = client.post(f"/api/v1/incidents/{incident_id}/resolve", json=INCIDENT, headers=keyed(owner, "k"))
    assert other_path.status_code == 422
    assert client.get(f"/api/v1/incidents/{incident_id}", headers=owner.headers).json()["status"] == "open"
    assert incident_count(rt) == 1


def test_a_failed_request_leaves_no_key_so_the_retry_runs(client, rt, owner):
    bad = client.post("/api/v1/incidents", json={"severity": "SEV-2"}, headers=keyed(owner, "retry-me"))
    assert bad.status_code == 422 and bad.json()["type"] == "/problems/validation"
    missing = client.post("/api/v1/incidents/999999/updates", json={"body": "x"}, headers=keyed(owner, "retry-me"))
    assert missing.status_code == 404  # a domain error rolls the reservation back too
    good = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "retry-me"))
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers
    assert client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "retry-me")).content == good.content
    assert incident_count(rt) == 1


def test_keys_belong_to_one_organization_and_token(client, rt, factory, owner):
    same_org = factory.member(owner.org_slug)
    other_org = factory.member(factory.org())
    for member in (owner, same_org, other_org):
        r = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(member, "shared-key"))
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert incident_count(rt, owner.actor.org_id) == 2
    assert incident_count(rt, other_org.actor.org_id) == 1


def test_keys_expire_after_the_ttl_and_are_purged(client, rt, clock, owner):
    first = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "old"))
    clock.advance(hours=rt.settings.idempotency_ttl_hours, seconds=-1)
    assert client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "old")).content == first.content
    clock.advance(seconds=1)
    again = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "old"))
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "other"))
    clock.advance(hours=rt.settings.idempotency_ttl_hours)
    client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, "fresh"))  # its store purges the rest
    with db.transaction(rt.factory) as s:
        assert list(s.scalars(select(IdempotencyRecord.key))) == ["fresh"]


def test_keys_are_1_to_255_printable_ascii_characters(client, rt, owner):
    for value in ["", " ", "x" * 256, "caf\u00e9", "tab\there", "nul\x00"]:
        r = client.post("/api/v1/incidents", json=INCIDENT,
                        headers={**owner.headers, "Idempotency-Key": value.encode("utf-8")})
        assert r.status_code == 400, value
        assert r.json()["type"] == "/problems/idempotency-key-invalid"
        assert r.json()["detail"] == "Send one Idempotency-Key header of 1 to 255 printable ASCII characters."
    assert incident_count(rt) == 0
    longest = ("".join(chr(c) for c in range(0x21, 0x7F)) * 3)[:255]
    assert client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, longest)).status_code == 201
    replay = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(owner, longest))
    assert replay.headers["idempotent-replayed"] == "true"
    assert incident_count(rt) == 1


def test_an_oversized_keyed_body_is_refused(client, rt, owner):
    body = b'{"title": "' + b"x" * idempotency.MAX_BODY_BYTES + b'"}'
    r = client.post("/api/v1/incidents", content=body,
                    headers={**keyed(owner, "big"), "content-type": "application/json"})
    assert r.status_code == 413
    assert incident_count(rt) == 0


def token_actor(rt, member):
    """Return the member's Actor as the API sees it (with the token that authenticated it)."""
    with db.transaction(rt.factory) as s:
        return orgs.authenticate_token(session=s, raw=member.token, now=rt.clock.now())


def leave_processing_row(rt, member, *, key: str, age: timedelta) -> None:
    """Leave a committed `processing` row, as a request still running (or a process that died) would."""
    pending = keys.Pending(key=key, method="POST", path="/api/v1/incidents",
                           request_sha256=hashlib.sha256(json.dumps(INCIDENT).encode()).hexdigest())
    with db.transaction(rt.factory) as s:
        keys.reserve(session=s, pending=pending, actor=token_actor(rt, member), now=rt.clock.now() - age,
                            ttl=timedelta(hours=24), box=rt.secret_box)


def post_raw(client, member, key: str):
    return client.post("/api/v1/incidents", content=json.dumps(INCIDENT).encode(),
                       headers={**keyed(member, key), "content-type": "application/json"})


def test_a_request_still_processing_gets_409_with_retry_after(client, rt, owner):
    leave_processing_row(rt, owner, key="busy", age=timedelta(seconds=5))
    r = post_raw(client, owner, "busy")
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/idempotency-in-progress"
    assert r.json()["detail"] == "A request with this Idempotency-Key is still being processed; retry shortly."
    assert r.headers["retry-after"] == "1"
    assert incident_count(rt) == 0


def test_a_response_lost_in_a_crash_is_never_replaced_by_a_second_run(client, rt, owner):
    leave_processing_row(rt, owner, key="crashed", age=timedelta(minutes=5))
    r = post_raw(client, owner, "crashed")
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/idempotency-unrecorded"
    assert "was processed, but its response was not recorded" in r.json()["detail"]
    assert incident_count(rt) == 0


def test_a_rolled_back_reservation_cannot_store_over_a_later_one(rt, owner):
    actor = token_actor(rt, owner)
    first = keys.Pending(key="k", method="POST", path="/api/v1/incidents", request_sha256="0" * 64)
    s = rt.factory()
    keys.reserve(session=s, pending=first, actor=actor, now=rt.clock.now(), ttl=timedelta(hours=1),
                 box=rt.secret_box)
    db.rollback(s)
    s.close()
    second = keys.Pending(key="k", method="POST", path="/api/v1/incidents", request_sha256="0" * 64)
    with db.transaction(rt.factory) as s:
        keys.reserve(session=s, pending=second, actor=actor, now=rt.clock.now(), ttl=timedelta(hours=1),
                     box=rt.secret_box)
    assert first.record_id == second.record_id or rt.engine.dialect.name == "postgresql"  # SQLite reuses the id
    store = dict(factory=rt.factory, status=201, headers={}, now=rt.clock.now(), ttl=timedelta(hours=1),
                 box=rt.secret_box)
    assert keys.store_response(pending=first, body=b"stale", **store) is False
    assert keys.store_response(pending=second, body=b"mine", **store) is True
    with db.transaction(rt.factory) as s:
        assert keys.open_body(rt.secret_box, s.scalar(select(IdempotencyRecord.response_body))) == b"mine"


def test_a_retry_never_shows_an_api_token_again(client, rt, owner):
    first = client.post("/api/v1/org/tokens", json={"name": "ci"}, headers=keyed(owner, "new-token"))
    assert first.status_code == 201
    raw = first.json()["token"]
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(IdempotencyRecord.response_body)) is None  # the secret is not kept, even encrypted
    again = client.post("/api/v1/org/tokens", json={"name": "ci"}, headers=keyed(owner, "new-token"))
    assert again.status_code == 409 and raw not in again.text
    assert again.json()["type"] == "/problems/idempotency-secret-shown-once"
    assert "held a secret that is shown only once" in again.json()["detail"]
    assert "idempotent-replayed" not in again.headers
    assert len(client.get("/api/v1/org/tokens", headers=owner.headers).json()) == 2  # the factory's and this one


def test_a_retry_never_shows_a_webhook_secret_again(client, rt, owner):
    hook = {"kind": "alertmanager", "name": "am"}
    first = client.post("/api/v1/webhooks", json=hook, headers=keyed(owner, "hook"))
    assert first.status_code == 201
    again = client.post("/api/v1/webhooks", json=hook, headers=keyed(owner, "hook"))
    assert again.status_code == 409 and first.json()["secret"] not in again.text
    assert again.json()["type"] == "/problems/idempotency-secret-shown-once"
    rotate = f"/api/v1/webhooks/{first.json()['id']}/rotate-secret"
    rotated = client.post(rotate, headers=keyed(owner, "rotate"))
    assert rotated.status_code == 200
    again = client.post(rotate, headers=keyed(owner, "rotate"))
    assert again.status_code == 409 and rotated.json()["secret"] not in again.text
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(Webhook.id))) == 1
        assert rt.secret_box.decrypt(s.scalar(select(Webhook.secret_encrypted))) == rotated.json()["secret"]


def test_a_demoted_caller_replaying_a_webhook_creation_gets_the_routes_403(client, rt, factory):
    team = factory.team()
    admin = team["admin"]
    hook = {"kind": "alertmanager", "name": "am"}
    created = client.post("/api/v1/webhooks", json=hook, headers=keyed(admin, "K"))
    assert created.status_code == 201
    demoted = client.patch(f"/api/v1/org/members/{admin.actor.user_id}", json={"role": "viewer"},
                           headers=team["owner"].headers)
    assert demoted.status_code == 200
    replay = client.post("/api/v1/webhooks", json=hook, headers=keyed(admin, "K"))
    unkeyed = client.post("/api/v1/webhooks", json=hook, headers=admin.headers)  # what the route tells a viewer
    assert (replay.status_code, unkeyed.status_code) == (403, 403)
    assert replay.json() == unkeyed.json() and replay.json()["type"] == "/problems/forbidden"
    assert created.json()["secret"] not in replay.text and "idempotent-replayed" not in replay.headers


def test_a_replay_checks_the_routes_own_action_against_the_current_role(client, rt, factory):
    team = factory.team()
    admin = team["admin"]
    incident = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(admin, "incident"))
    monitor_body = {"name": "api", "url": "http://127.0.0.1:9/health"}
    monitor = client.post("/api/v1/monitors", json=monitor_body, headers=keyed(admin, "monitor"))
    assert (incident.status_code, monitor.status_code) == (201, 201)
    assert client.patch(f"/api/v1/org/members/{admin.actor.user_id}", json={"role": "member"},
                        headers=team["owner"].headers).status_code == 200
    again = client.post("/api/v1/incidents", json=INCIDENT, headers=keyed(admin, "incident"))
    assert again.status_code == 201 and again.content == incident.content  # a member still writes incidents
    assert again.headers["idempotent-replayed"] == "true"
    refused = client.post("/api/v1/monitors", json=monitor_body, headers=keyed(admin, "monitor"))
    assert refused.status_code == 403 and "manage members, tokens and integrations" in refused.json()["detail"]
    assert incident_count(rt) == 1


def test_every_api_post_route_has_a_replay_rule(app):
    """A POST route missing from REPLAY_ACTIONS never replays; its action must be the one the role suites check."""
    posts = {r.path for r in iter_route_contexts(app.app.routes)
             if r.methods and "POST" in r.methods and r.path.startswith("/api/")}
    assert posts - set(idempotency.REPLAY_ACTIONS) == set()
    assert {p: idempotency.REPLAY_ACTIONS[p] for p in posts} == {p: ROUTES[("POST", p)].action for p in posts}
    assert idempotency.SECRET_ONCE_ROUTES <= posts
    secret_fields = {"secret", "token", "invite_url"}
    with_secret = {r.path for r in iter_route_contexts(app.app.routes)
                   if r.path in posts and secret_fields & set(getattr(r.response_model, "model_fields", {}))}
    assert with_secret <= idempotency.SECRET_ONCE_ROUTES


def test_every_api_post_route_takes_the_key(app):
    """The reservation lives in api_actor: a new API POST route that skips it would silently ignore the key."""
    def dependencies(dependant):
        for dep in dependant.dependencies:
            yield dep.call
            yield from dependencies(dep)

    posts = [r for r in iter_route_contexts(app.app.routes)
             if r.methods and "POST" in r.methods and r.path.startswith("/api/")]
    assert len(posts) >= 10
    assert [r.path for r in posts if api_actor not in set(dependencies(r.dependant))] == []


def test_twenty_concurrent_duplicates_over_http_create_one_incident(app, rt, owner):
    headers = keyed(owner, "race-1")
    results: list[httpx.Response | Exception] = [None] * 20
    with serving(app) as url:
        # why: with the token's last use fresh, no request waits on the token row: duplicates meet at the unique key
        assert httpx.get(f"{url}/api/v1/incidents", headers=owner.headers, verify=False).status_code == 200
        barrier = threading.Barrier(20)

        def one(i: int) -> None:
            with httpx.Client(base_url=url, timeout=60, verify=False) as c:  # plain http; skips building TLS contexts
                barrier.wait()
                try:
                    results[i] = c.post("/api/v1/incidents", json=INCIDENT, headers=headers)
                except Exception as exc:  # noqa: BLE001 - reported below
                    results[i] = exc

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = httpx.post(f"{url}/api/v1/incidents", json=INCIDENT, headers=headers, timeout=30, verify=False)
    assert all(isinstance(r, httpx.Response) for r in results), results
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in results if r.status_code == 201]
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1
    assert len({r.content for r in created}) == 1
    for r in results:
        if r.status_code == 409:
            assert r.json()["type"] == "/problems/idempotency-in-progress" and r.headers["retry-after"] == "1"
    assert after.status_code == 201 and after.headers["idempotent-replayed"] == "true"
    assert after.content == created[0].content
    assert incident_count(rt) == 1
