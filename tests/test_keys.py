"""Secret keys: `blametrail keys rotate` re-encrypts every stored secret with the first key, so the old ones can go;
a new first key neither logs anyone out nor invalidates open forms."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import LargeBinary, select

from blametrail import cli, db, keys
from blametrail.ai.models import AIConfig
from blametrail.app import create_app
from blametrail.crypto import SecretBox
from blametrail.models import Base
from blametrail.runtime import build_runtime

PASSWORD = "correct-horse-battery"
HTML = {"accept": "text/html"}
ALERT = {"version": "4", "status": "firing", "receiver": "bt", "groupKey": "g1", "alerts": [
    {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "checkout"},
     "startsAt": "2026-11-26T09:58:00Z", "fingerprint": "f1"}]}


@pytest.fixture
def clients(settings, clock):
    """Open TestClients on apps configured with a given BLAMETRAIL_SECRET_KEY (one database for all)."""
    opened = []

    def open_with(secret_key: str, cookies=None) -> TestClient:
        s = settings.model_copy(update={"secret_key": secret_key})
        rt = build_runtime(s, clock=clock, migrate=False, immediate=True, queue_url="memory://")
        c = TestClient(create_app(s, runtime=rt, background=False), cookies=cookies)
        opened.append((c, rt))
        return c

    yield open_with
    for c, rt in opened:
        c.close()
        rt.close()


@pytest.fixture
def rotate(monkeypatch, settings, capsys):
    """Run `blametrail keys rotate` with a key list; return its exit status and output."""
    for name in [n for n in os.environ if n.startswith("BLAMETRAIL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BLAMETRAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BLAMETRAIL_DATABASE_URL", settings.resolved_database_url)

    def run(secret_key: str) -> tuple[int, str, str]:
        monkeypatch.setenv("BLAMETRAIL_SECRET_KEY", secret_key)
        status = cli.main(["keys", "rotate"])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


def test_rotate_re_encrypts_every_secret_so_the_old_key_can_be_dropped(clients, rotate, factory, rt):
    owner = factory.member(factory.org(plan="pro"), "owner")
    old = clients("old-key")
    hook = old.post("/api/v1/webhooks", headers=owner.headers, json={"kind": "alertmanager", "name": "am"}).json()
    conn = old.post("/api/v1/connections", headers=owner.headers, json={
        "name": "prom", "provider": "prometheus", "endpoint": "http://127.0.0.1:9090",
        "credentials": {"token": "prom-t0ken"}}).json()
    assert old.put("/api/v1/org/ai", headers=owner.headers,
                   json={"engine": "anthropic", "model": "claude-x", "api_key": "sk-ant-123"}).status_code == 200
    replayable = {**owner.headers, "Idempotency-Key": "incident-1"}
    incident = {"title": "Checkout 502s", "services": ["checkout"]}
    created = old.post("/api/v1/incidents", headers=replayable, json=incident)
    assert created.status_code == 201

    status, out, _ = rotate("new-key,old-key")
    assert status == 0
    assert out.splitlines()[:4] == [
        "webhook.secret_encrypted: 1 re-encrypted, 0 already under the first key, 0 unreadable",
        "ai_config.api_key_encrypted: 1 re-encrypted, 0 already under the first key, 0 unreadable",
        "connection.credentials_encrypted: 1 re-encrypted, 0 already under the first key, 0 unreadable",
        "idempotency_record.response_body: 1 re-encrypted, 0 already under the first key, 0 unreadable"]
    status, out, _ = rotate("new-key,old-key")  # idempotent: nothing left to do
    assert status == 0 and out.count(": 0 re-encrypted, 1 already under the first key, 0 unreadable") == 4

    new = clients("new-key")  # the old key is gone
    delivery = new.post("/" + hook["url"].split("://", 1)[1].split("/", 1)[1], json=ALERT,
                        headers={"Authorization": f"Bearer {hook['secret']}"})
    assert delivery.status_code == 200, delivery.text
    assert new.get(f"/api/v1/connections/{conn['id']}", headers=owner.headers).json()["credential_keys"] == ["token"]
    replay = new.post("/api/v1/incidents", headers=replayable, json=incident)
    assert (replay.status_code, replay.json()) == (201, created.json())
    with db.transaction(rt.factory) as s:
        assert SecretBox("new-key").decrypt(s.scalar(select(AIConfig.api_key_encrypted))) == "sk-ant-123"


def test_secrets_no_listed_key_opens_are_counted_and_fail_the_command(clients, rotate, factory):
    owner = factory.member(factory.org(plan="pro"), "owner")
    clients("lost-key").post("/api/v1/webhooks", headers=owner.headers, json={"kind": "grafana", "name": "g"})
    status, out, err = rotate("new-key,old-key")
    assert status == 1
    assert "webhook.secret_encrypted: 0 re-encrypted, 0 already under the first key, 1 unreadable" in out
    assert "1 stored secret(s) open under none of the keys" in err


def test_every_encrypted_column_is_rotated():
    sealed = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns
              if c.name.endswith("_encrypted") or isinstance(c.type, LargeBinary)}
    assert sealed == {s.name for s in keys.ENCRYPTED}


def test_a_new_first_key_keeps_sessions_and_open_forms(clients, factory):
    member = factory.member(factory.org(), "member", password=PASSWORD)
    old = clients("old-key")
    old.get("/login")
    form_token = old.cookies["csrftoken"]
    assert old.post("/login", data={"email": member.email, "password": PASSWORD, "csrftoken": form_token},
                    follow_redirects=False).status_code == 303

    rotated = clients("new-key,old-key", cookies=dict(old.cookies))
    page = rotated.get("/incidents", headers=HTML, follow_redirects=False)
    assert page.status_code == 200
    # that answer signed the session cookie again, with the new key: the old one can go
    resigned = {**dict(old.cookies), "blametrail_session": page.cookies["blametrail_session"]}
    page = clients("new-key", cookies=resigned).get("/incidents", headers=HTML, follow_redirects=False)
    assert page.status_code == 200
    stranger = clients("other-key", cookies=dict(old.cookies))
    assert stranger.get("/incidents", headers=HTML, follow_redirects=False).status_code == 303
    # a form rendered before the new key still posts
    r = rotated.post("/logout", data={"csrftoken": form_token}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
