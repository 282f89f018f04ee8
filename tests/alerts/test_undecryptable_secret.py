"""A webhook secret no configured BLAMETRAIL_SECRET_KEY opens: a clear 503 problem and one log line, never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.webhooks.models import WebhookDelivery
from tests.alerts.test_parsers import ALERTMANAGER_FIRING

DETAIL = ("This webhook's secret cannot be decrypted with the configured keys; re-create the secret (rotate it) and "
          "give the new one to the sender.")
DEPLOY = {"service": "checkout", "version": "v42"}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"secret_key": "the-old-key"})


def create(client, owner, kind: str) -> dict:
    r = client.post("/api/v1/webhooks", json={"kind": kind, "name": kind}, headers=owner.headers)
    assert r.status_code == 201
    return r.json()


def deliver(client, hook: dict, secret: str):
    """Send a valid delivery of the webhook's kind, authenticated with `secret`."""
    if hook["kind"] == "github":
        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return client.post(hook["url"], content=body, headers={"content-type": "application/json",
                                                                "x-github-event": "ping",
                                                                "x-hub-signature-256": signature})
    body = ALERTMANAGER_FIRING if hook["kind"] == "alertmanager" else DEPLOY
    return client.post(hook["url"], json=body, headers={"Authorization": f"Bearer {secret}"})


def use_keys(rt, keys: str) -> None:
    rt.settings = rt.settings.model_copy(update={"secret_key": keys})


def test_a_secret_sealed_with_a_removed_key_answers_a_clear_503(client, rt, factory, caplog):
    owner = factory.team()["owner"]
    hooks = [create(client, owner, kind) for kind in ("alertmanager", "github", "generic_deploy")]
    use_keys(rt, "a-new-key")  # the old key was replaced, not kept second in the list
    caplog.set_level(logging.INFO)
    for hook in hooks:
        caplog.clear()
        r = deliver(client, hook, hook["secret"])
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/secret-undecryptable" and r.json()["detail"] == DETAIL
        errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is None and DETAIL in errors[0].getMessage()
        assert hook["secret"] not in caplog.text
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count(WebhookDelivery.id))) == 0

    use_keys(rt, "a-new-key, the-old-key")  # keeping the old key second opens it again
    assert deliver(client, hooks[0], hooks[0]["secret"]).status_code == 200
    use_keys(rt, "a-new-key")  # or, as the problem says: rotate the secret
    rotated = client.post(f"/api/v1/webhooks/{hooks[1]['id']}/rotate-secret", headers=owner.headers).json()
    assert deliver(client, {**hooks[1], **rotated}, rotated["secret"]).status_code == 200
