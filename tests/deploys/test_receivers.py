"""Deploy receivers: GitHub (signed) and generic webhooks, rejections that store nothing, replays, API dedupe."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.deploys.models import Commit, Deploy
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.models import WebhookDelivery
from tests.deploys.test_parsers import DEPLOYMENT_STATUS_SUCCESS, PING, PUSH_MAIN, SHA
from tests.factories import iso


@pytest.fixture
def owner(factory):
    return factory.member(factory.org())


def make_hook(rt, member, kind: str, **options) -> tuple[str, str, int]:
    """Create a webhook through the service; return its uid, its secret and its id."""
    with db.transaction(rt.factory) as s:
        hook, secret = webhooks.create(session=s, actor=member.actor, box=rt.secret_box, kind=kind, name=kind,
                                       now=rt.clock.now(), **options)
    return hook.uid, secret, hook.id


def counts(rt) -> tuple[int, int, int]:
    with db.transaction(rt.factory) as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Deploy, Commit, WebhookDelivery))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(client, uid: str, secret: str | None, payload, event: str = "deployment_status",
           delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958", signature: str | None = None, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    h = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
         "User-Agent": "GitHub-Hookshot/1a2b3c4", **headers}
    if signature is not None:
        h["X-Hub-Signature-256"] = signature
    elif secret is not None:
        h["X-Hub-Signature-256"] = sign(secret, body)
    return client.post(f"/webhooks/github/{uid}", content=body, headers=h)


def test_signed_deployment_status_records_deploy_and_commits(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github")
    r = github(client, uid, secret, DEPLOYMENT_STATUS_SUCCESS)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "recorded"
    d = body["deploy"]
    assert (d["service"], d["environment"], d["version"]) == ("checkout", "production", "v2.14.0")
    assert d["source"] == "github"
    assert d["deployed_at"] == "2026-11-26T09:50:12Z" and d["external_id"] == "gh-deployment-status:3302041198"
    assert [c["sha"] for c in d["commits"]] == [SHA]
    assert counts(rt) == (1, 1, 1)
    listed = client.get("/api/v1/deploys", headers=owner.headers).json()
    assert [x["id"] for x in listed] == [d["id"]]


def test_push_to_default_branch_records_commits_with_files(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github", environment="production")
    r = github(client, uid, secret, PUSH_MAIN, event="push")
    assert r.status_code == 201, r.text
    d = r.json()["deploy"]
    assert d["external_id"] == f"gh-push:{SHA}" and d["environment"] == "production"
    assert [c["files"] for c in d["commits"]] == [["checkout/metrics.py", "checkout/pool.py"],
                                                 ["checkout/config.py", "checkout/pool.py", "checkout/old_pool.py"]]
    assert counts(rt) == (1, 2, 1)


def test_ignored_events_are_acknowledged_and_store_no_deploy(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github")
    r = github(client, uid, secret, PUSH_MAIN, event="push", delivery="d-push")
    assert r.status_code == 202 and r.json()["status"] == "ignored" and "environment" in r.json()["detail"]
    failed = copy.deepcopy(DEPLOYMENT_STATUS_SUCCESS)
    failed["deployment_status"]["state"] = "failure"
    r = github(client, uid, secret, failed, delivery="d-failed")
    assert r.status_code == 202 and "failure" in r.json()["detail"]
    r = github(client, uid, secret, {"action": "opened"}, event="issues", delivery="d-issue")
    assert r.status_code == 202 and r.json()["status"] == "ignored"
    r = github(client, uid, secret, PING, event="ping", delivery="d-ping")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert counts(rt)[:2] == (0, 0)


def test_environment_of_the_webhook_filters_deployments(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github", environment="staging")
    r = github(client, uid, secret, DEPLOYMENT_STATUS_SUCCESS)
    assert r.status_code == 202 and "staging" in r.json()["detail"]
    assert counts(rt)[:2] == (0, 0)


@pytest.mark.parametrize("case", ["wrong-secret", "tampered-body", "missing", "not-sha256", "garbage"])
def test_bad_signatures_get_401_and_store_nothing(client, rt, owner, case):
    uid, secret, _ = make_hook(rt, owner, "github")
    body = json.dumps(DEPLOYMENT_STATUS_SUCCESS).encode()
    signature = {
        "wrong-secret": sign("whsec_not-the-secret", body),
        "tampered-body": sign(secret, body.replace(b"v2.14.0", b"v2.15.0")),
        "missing": None,
        "not-sha256": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "garbage": "sha256=zz",
    }[case]
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    r = client.post(f"/webhooks/github/{uid}", content=body,
                    headers={"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "d1", **headers})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert ("Missing X-Hub-Signature-256" if case == "missing" else "signature mismatch") in r.json()["detail"]
    assert counts(rt) == (0, 0, 0)


def test_malformed_json_is_400_and_schema_errors_are_422(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github")
    r = github(client, uid, secret, b'{"deployment_status": {', delivery="d-bad")
    assert r.status_code == 400 and r.json()["type"] == "/problems/malformed-payload"
    assert "Malformed JSON" in r.json()["detail"]
    r = github(client, uid, secret, {"deployment": {}, "repository": {"name": "x"}}, delivery="d-schema")
    assert r.status_code == 422 and r.json()["type"] == "/problems/validation"
    assert "deployment_status" in r.json()["detail"]
    r = github(client, uid, secret, {"zen": "x"}, event="", delivery="d-noevent")
    assert r.status_code == 400 and "X-GitHub-Event" in r.json()["detail"]
    assert counts(rt) == (0, 0, 0)


def test_oversized_bodies_get_413_and_store_nothing(client, rt, owner, settings):
    uid, secret, _ = make_hook(rt, owner, "github")
    settings.webhook_max_body_bytes = 4096
    payload = copy.deepcopy(DEPLOYMENT_STATUS_SUCCESS)
    payload["deployment"]["description"] = "x" * 5000
    body = json.dumps(payload).encode()
    r = github(client, uid, secret, body)  # declared Content-Length
    assert r.status_code == 413 and r.json()["type"] == "/problems/too-large"

    def chunks():  # no Content-Length: the cap counts while reading
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    r = client.post(f"/webhooks/github/{uid}", content=chunks(),
                    headers={"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "d2",
                             "X-Hub-Signature-256": sign(secret, body)})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert counts(rt) == (0, 0, 0)


def test_replayed_delivery_stores_nothing_new(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github")
    assert github(client, uid, secret, DEPLOYMENT_STATUS_SUCCESS, delivery="same").status_code == 201
    before = counts(rt)
    r = github(client, uid, secret, DEPLOYMENT_STATUS_SUCCESS, delivery="same")
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert counts(rt) == before == (1, 1, 1)


def test_same_external_id_with_another_delivery_id_records_no_new_deploy(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "github")
    assert github(client, uid, secret, DEPLOYMENT_STATUS_SUCCESS, delivery="first").status_code == 201
    payload = copy.deepcopy(DEPLOYMENT_STATUS_SUCCESS)
    payload["deployment"]["ref"] = "v9.9.9"  # a redelivery GitHub re-rendered: same deployment_status id
    r = github(client, uid, secret, payload, delivery="second")
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    deploys, commits, deliveries = counts(rt)
    assert (deploys, commits) == (1, 1)
    assert deliveries == 2  # the delivery log shows it arrived (with no items)
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(Deploy.version)) == "v2.14.0"


def test_disabled_unknown_or_wrong_kind_webhook_is_404(client, rt, owner):
    uid, secret, hook_id = make_hook(rt, owner, "github")
    generic_uid, generic_secret, _ = make_hook(rt, owner, "generic_deploy")
    assert github(client, "no-such-uid", secret, DEPLOYMENT_STATUS_SUCCESS).status_code == 404
    assert github(client, generic_uid, generic_secret, DEPLOYMENT_STATUS_SUCCESS).status_code == 404
    with db.transaction(rt.factory) as s:
        webhooks.disable(session=s, actor=owner.actor, webhook_id=hook_id, now=rt.clock.now())
    r = github(client, uid, secret, DEPLOYMENT_STATUS_SUCCESS)
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    assert counts(rt) == (0, 0, 0)


def test_webhook_deploy_appears_on_the_incident_timeline(client, rt, owner, clock):
    uid, secret, _ = make_hook(rt, owner, "github", environment="production")
    assert github(client, uid, secret, PUSH_MAIN, event="push").status_code == 201
    r = client.post("/api/v1/incidents", headers=owner.headers,
                    json={"title": "Checkout errors", "services": ["checkout"], "started_at": iso(clock.now())})
    assert r.status_code == 201, r.text
    timeline = client.get(f"/api/v1/incidents/{r.json()['id']}/timeline", headers=owner.headers).json()
    deploys = [t for t in timeline if t["source"] == "deploy"]
    assert len(deploys) == 1
    assert deploys[0]["data"]["version"] == SHA[:12]
    files = {f for c in deploys[0]["data"]["commits"] for f in c["files"]}
    assert files >= {"checkout/pool.py", "checkout/old_pool.py"}


GENERIC = {"service": "checkout", "environment": "production", "version": "v2.14.0",
           "deployed_at": "2026-11-26T09:55:00Z", "external_id": "jenkins-4411", "url": "https://ci.acme.test/4411",
           "commits": [{"sha": "4e7a91c0", "author": "Jo", "message": "Limit pool", "files": ["pool.py"],
                        "committed_at": "2026-11-26T09:30:00Z"}]}


@pytest.mark.parametrize("how", ["bearer", "header"])
def test_generic_deploy_webhook_records_once(client, rt, owner, how):
    uid, secret, _ = make_hook(rt, owner, "generic_deploy")
    auth = {"Authorization": f"Bearer {secret}"} if how == "bearer" else {"X-BlameTrail-Secret": secret}
    r = client.post(f"/webhooks/deploys/{uid}", json=GENERIC, headers=auth)
    assert r.status_code == 201, r.text
    d = r.json()["deploy"]
    assert (d["source"], d["external_id"], d["url"]) == ("webhook", "jenkins-4411", "https://ci.acme.test/4411")
    assert d["commits"][0]["files"] == ["pool.py"]
    r = client.post(f"/webhooks/deploys/{uid}", json=GENERIC, headers=auth)  # identical body: a replay
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    r = client.post(f"/webhooks/deploys/{uid}", json={**GENERIC, "version": "v2.14.1"},
                    headers={**auth, "X-BlameTrail-Delivery": "retry-2"})  # same external_id
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert counts(rt)[:2] == (1, 1)


def test_generic_deploy_rejections_store_nothing(client, rt, owner):
    uid, secret, _ = make_hook(rt, owner, "generic_deploy")
    auth = {"Authorization": f"Bearer {secret}"}
    r = client.post(f"/webhooks/deploys/{uid}", json=GENERIC, headers={"Authorization": "Bearer whsec_wrong"})
    assert r.status_code == 401 and r.json()["type"] == "/problems/unauthenticated"
    assert client.post(f"/webhooks/deploys/{uid}", json=GENERIC).status_code == 401
    r = client.post(f"/webhooks/deploys/{uid}", content=b"{oops", headers=auth)
    assert r.status_code == 400 and "Malformed JSON" in r.json()["detail"]
    r = client.post(f"/webhooks/deploys/{uid}", json={**GENERIC, "colour": "blue"}, headers=auth)
    assert r.status_code == 422 and "colour" in r.json()["detail"]
    future = {**GENERIC, "deployed_at": "2027-01-01T00:00:00Z"}
    r = client.post(f"/webhooks/deploys/{uid}", json=future, headers=auth)
    assert r.status_code == 422 and "future" in r.json()["detail"]
    assert counts(rt) == (0, 0, 0)


def test_api_repeated_external_id_answers_200_with_the_existing_deploy(client, rt, owner):
    body = {k: v for k, v in GENERIC.items()}
    first = client.post("/api/v1/deploys", json=body, headers=owner.headers)
    assert first.status_code == 201 and first.json()["source"] == "api"
    again = client.post("/api/v1/deploys", json={**body, "version": "other"}, headers=owner.headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["version"] == "v2.14.0"
    plain = {k: v for k, v in body.items() if k not in ("external_id", "url")}
    assert client.post("/api/v1/deploys", json=plain, headers=owner.headers).status_code == 201
    assert client.post("/api/v1/deploys", json=plain, headers=owner.headers).status_code == 201  # no id: no dedupe
    assert counts(rt)[0] == 3
