"""Secrets never leak: not into any log record (every logger at DEBUG), not into any later API response or page,
not into anything stored (generation audit and evidence included), except the one response that shows them once.

The flows handle every kind of secret the product holds: webhook secrets (created through the API and the page,
presented as Bearer, Basic, header, and as GitHub's HMAC key), observability credentials (a token, and a username
and password) sent to a backend that echoes them back in its error, the organization's LLM API key sent to a
provider that echoes it in its 401, the installation's keys, API tokens, and passwords (invite, login, a wrong
guess). Backends here are local servers speaking the real protocols.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from werkzeug.wrappers import Response as WzResponse

from blametrail import db
from blametrail.models import Base
from blametrail.settings import Settings
from tests.alerts.test_parsers import ALERTMANAGER_FIRING
from tests.deploys.test_parsers import PUSH_MAIN
from tests.deploys.test_receivers import GENERIC
from tests.security.conftest import API, PASSWORD
from tests.web.test_pages import login, post

INSTALL_OPENAI_KEY = "sk-install-0f3b9d2c7a1e4b5f8c6d"
INSTALL_ANTHROPIC_KEY = "sk-ant-install-9a8b7c6d5e4f3a2b1c0d"
SECRET_KEY = "install-secret-key-5d1c9e7b3a2f4e6d8c0b"
ORG_AI_KEY = "sk-org-7e2d4c6b8a0f1e3d5c7b"
PROM_TOKEN = "prom-token-3c5e7a9b1d2f4e6a8c0d"
LOKI_USER, LOKI_PASSWORD = "loki-user", "loki-pass-8b6d4f2a0c1e3b5d7f9a"
INVITE_PASSWORD = "invite-pass-2e4a6c8d0f1b3d5e7a9c"
WRONG_PASSWORD = "wrong-guess-6f4d2b0a8e6c4a2e0c8b"
WRONG_SECRET = "whsec_wrong_1a3c5e7b9d2f4a6c8e0b"


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    """The installation holds secrets of its own: they must not surface either."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, dev_mode=True, embedded_workers=0,
                    secret_key=SECRET_KEY, openai_api_key=INSTALL_OPENAI_KEY, anthropic_api_key=INSTALL_ANTHROPIC_KEY,
                    _env_file=None)


class Secrets:
    """Every secret the flows handle, with the forms they travel in (Basic auth, an HMAC signature)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str) -> str:
        assert len(value) >= 12, f"{name} is too short to search for"
        self.values[name] = value
        return value

    def found_in(self, text: str) -> list[str]:
        return [name for name, value in self.values.items() if value in text]


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr({k: v for k, v in record.__dict__.items()
                                                           if k not in ("msg", "args", "exc_info")})]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def _echo(request):
    """A backend that fails every request and echoes its credentials in the error, as some proxies do: 502 for the
    connection test, 400 (a rejected query) while evidence is fetched."""
    auth = request.headers.get("Authorization", "")
    decoded = base64.b64decode(auth[6:]).decode() if auth.lower().startswith("basic ") else ""
    tenant = request.headers.get("X-Scope-OrgID")
    body = {"status": "error", "errorType": "bad_data",
            "error": f"upstream refused Authorization: {auth} ({decoded}) for tenant {tenant}"}
    status = 400 if "query" in request.path else 502
    return WzResponse(json.dumps(body), status=status, content_type="application/json")


@pytest.fixture
def echo_backend(httpserver):
    httpserver.expect_request(re.compile(".*")).respond_with_handler(_echo)
    return httpserver.url_for("").rstrip("/")


def test_secrets_never_reach_logs_responses_pages_or_storage(app, client, factory, rt, caplog, echo_backend):
    from tests.ai.test_providers import FakeProvider, openai_error

    caplog.set_level(logging.DEBUG)  # every logger, at its most talkative, including those that set a level
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    secrets = Secrets()
    for name, value in (("install openai key", INSTALL_OPENAI_KEY), ("install anthropic key", INSTALL_ANTHROPIC_KEY),
                        ("secret key", SECRET_KEY), ("org AI key", ORG_AI_KEY), ("prometheus token", PROM_TOKEN),
                        ("loki password", LOKI_PASSWORD), ("loki basic auth", base64.b64encode(
                            f"{LOKI_USER}:{LOKI_PASSWORD}".encode()).decode()),
                        ("invite password", INVITE_PASSWORD), ("wrong password", WRONG_PASSWORD),
                        ("wrong webhook secret", WRONG_SECRET)):
        secrets.add(name, value)
    shown_once: list[str] = []  # responses that are meant to show a secret, once

    slug = factory.org()
    owner = factory.member(slug, "owner", password=PASSWORD)
    viewer = factory.member(slug, "viewer", password=PASSWORD)
    secrets.add("owner token", owner.token)
    h = owner.headers

    # API tokens: shown once at creation, then used
    r = client.post(f"{API}/org/tokens", headers=h, json={"name": "ci"})
    assert r.status_code == 201
    ci_token = secrets.add("ci token", r.json()["token"])
    shown_once.append(r.text)
    assert client.get(f"{API}/incidents", headers={"Authorization": f"Bearer {ci_token}"}).status_code == 200

    # webhooks: secret shown once by the API and by the page
    hooks = {}
    for kind in ("alertmanager", "github", "generic_deploy"):
        r = client.post(f"{API}/webhooks", headers=h, json={"kind": kind, "name": f"{kind} hook",
                                                           "default_service": "checkout", "environment": "production"})
        assert r.status_code == 201
        shown_once.append(r.text)
        hooks[kind] = {"uid": r.json()["url"].rsplit("/", 1)[1], "id": r.json()["id"],
                       "secret": secrets.add(f"{kind} webhook secret", r.json()["secret"])}
    with TestClient(app) as browser:
        browser.headers["accept"] = "text/html"
        assert login(browser, owner.email).status_code == 303
        r = post(browser, "/settings/webhooks", {"kind": "generic_alert", "name": "page hook"})
        assert r.status_code == 200, r.text
        page_secret = re.search(r"whsec_[A-Za-z0-9_\-]+", r.text)
        assert page_secret, "the new webhook's page shows its secret once"
        secrets.add("page webhook secret", page_secret.group(0))
        shown_once.append(r.text)
        # the invitee chooses a password through the invitation link; a wrong guess and a good login through the page
        r = client.post(f"{API}/org/members", headers=h, json={"email": "new@example.test", "role": "member"})
        assert r.status_code == 201
        link = "/" + r.json()["invite_url"].split("://", 1)[1].split("/", 1)[1]
        with TestClient(app) as other:
            other.headers["accept"] = "text/html"
            assert post(other, link, {"name": "New", "password": INVITE_PASSWORD, "confirm_password": INVITE_PASSWORD},
                        follow_redirects=False).status_code == 303
            post(other, "/logout", {})
            assert 400 <= login(other, "new@example.test", WRONG_PASSWORD).status_code < 500
            assert login(other, "new@example.test", INVITE_PASSWORD).status_code == 303

    # deliveries presenting the secrets every supported way, and wrong ones
    am = f"/webhooks/alertmanager/{hooks['alertmanager']['uid']}"
    am_secret = hooks["alertmanager"]["secret"]
    body = json.dumps(ALERTMANAGER_FIRING).encode()
    basic = base64.b64encode(f"alertmanager:{am_secret}".encode()).decode()
    secrets.add("alertmanager basic auth", basic)
    for headers, expected in (({"Authorization": f"Bearer {am_secret}"}, 200),
                              ({"Authorization": f"Basic {basic}"}, 200), ({"X-BlameTrail-Secret": am_secret}, 200),
                              ({"Authorization": f"Bearer {WRONG_SECRET}"}, 401),
                              ({"X-BlameTrail-Secret": WRONG_SECRET}, 401)):
        r = client.post(am, content=body, headers={"Content-Type": "application/json", **headers})
        assert r.status_code == expected, r.text
        body = body.replace(b"blametrail", b"blametrail ")  # a new delivery each time, not a replay
    gd = f"/webhooks/deploys/{hooks['generic_deploy']['uid']}"
    assert client.post(gd, json=GENERIC, headers={"Authorization": f"Bearer {hooks['generic_deploy']['secret']}"}
                       ).status_code == 201
    gh_body = json.dumps(PUSH_MAIN).encode()
    gh_secret = hooks["github"]["secret"]
    good_sig = hmac.new(gh_secret.encode(), gh_body, hashlib.sha256).hexdigest()
    tampered = gh_body.replace(b"jo-dev", b"mallory")
    expected_sig = secrets.add("signature the server expects for a tampered body",
                               hmac.new(gh_secret.encode(), tampered, hashlib.sha256).hexdigest())
    gh = f"/webhooks/github/{hooks['github']['uid']}"
    gh_headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={good_sig}",
                  "Content-Type": "application/json"}
    r = client.post(gh, content=gh_body, headers=gh_headers)
    assert r.status_code == 201, r.text
    r = client.post(gh, content=tampered, headers=gh_headers)  # the signature of another body
    assert r.status_code == 401 and expected_sig not in r.text

    # observability credentials, sent to a backend that echoes them in its errors
    conn_ids = []
    for provider, creds, options in (("prometheus", {"token": PROM_TOKEN}, {}),
                                     ("loki", {"username": LOKI_USER, "password": LOKI_PASSWORD}, {"tenant": "acme"})):
        r = client.post(f"{API}/connections", headers=h, json={
            "name": f"{provider} prod", "provider": provider, "endpoint": echo_backend, "credentials": creds,
            "options": {"timeout_seconds": 2, **options},
            "signals": [{"name": "errors", "kind": "metric" if provider == "prometheus" else "log",
                         "query": "up" if provider == "prometheus" else '{app="checkout"}', "services": ["checkout"]}]})
        assert r.status_code == 201, r.text
        conn_ids.append(r.json()["id"])
        r = client.post(f"{API}/connections/{r.json()['id']}/test", headers=h)
        assert r.status_code == 200 and r.json()["ok"] is False, r.text

    # the organization's LLM key, sent to a provider that echoes it in its 401 (as OpenAI's API does)
    with FakeProvider() as provider:
        r = client.put(f"{API}/org/ai", headers=h, json={
            "engine": "openai", "model": "gpt-test", "base_url": provider.url + "/v1", "api_key": ORG_AI_KEY,
            "options": {"timeout_seconds": 5, "max_retries": 0}})
        assert r.status_code == 200, r.text
        for status, message in ((400, f"Invalid request for key {ORG_AI_KEY}: model gpt-test does not exist"),
                                (401, f"Incorrect API key provided: {ORG_AI_KEY}. You can find your API key at "
                                      "https://platform.openai.com/account/api-keys.")):
            # one answer for the live summary (asked when the incident opens), one for the draft
            provider.script(openai_error(status, message), openai_error(status, message))
            iid = client.post(f"{API}/incidents", headers=h, json={
                "title": "Checkout errors", "services": ["checkout"], "started_at": "2026-11-26T09:30:00Z",
                "description": "Suspected bad deploy"}).json()["id"]
            client.post(f"{API}/incidents/{iid}/updates", headers=h, json={"body": "Rolling back"}).raise_for_status()
            assert client.post(f"{API}/incidents/{iid}/resolve", headers=h).status_code == 200
            pm = client.get(f"{API}/incidents/{iid}/postmortem", headers=h).json()
            assert pm["engine"] == "builtin" and str(status) in (pm["error"] or ""), pm
        assert provider.requests and provider.requests[0]["headers"]["authorization"] == f"Bearer {ORG_AI_KEY}"

    leaks: list[str] = []

    # 1. no log record anywhere carries a secret
    for record in caplog.records:
        found = secrets.found_in(_record_text(record))
        if found:
            leaks.append(f"log {record.name} {record.levelname}: {found}: {record.getMessage()[:300]}")

    # 2. the one-time displays did show them; no later API response does (owner, who sees the audit, and viewer)
    assert all(secrets.found_in(text) for text in shown_once)
    urls = [f"{API}/org/tokens", f"{API}/org/members", f"{API}/org/settings", f"{API}/org/ai", f"{API}/webhooks",
            f"{API}/connections", f"{API}/incidents?limit=200", f"{API}/alerts?limit=200", f"{API}/deploys?limit=200",
            *[f"{API}/webhooks/{hk['id']}" for hk in hooks.values()],
            *[f"{API}/webhooks/{hk['id']}/deliveries" for hk in hooks.values()],
            *[f"{API}/connections/{c}" for c in conn_ids]]
    for incident in client.get(f"{API}/incidents?limit=200", headers=h).json()["items"]:
        base = f"{API}/incidents/{incident['id']}"
        urls += [base, f"{base}/timeline", f"{base}/summary", f"{base}/postmortem", f"{base}/postmortem/runs",
                 f"{base}/postmortem/revisions", f"{base}/postmortem/export.md", f"{base}/postmortem/original"]
    for who in (owner, viewer):
        for url in urls:
            r = client.get(url, headers=who.headers)
            assert r.status_code < 500, f"{url}: {r.status_code}"
            found = secrets.found_in(r.text)
            if found:
                leaks.append(f"GET {url} as {who.actor.role}: {found}")

    # 3. no page shows one (the crawl follows every link and htmx fragment from the main pages)
    from tests.security.test_xss import crawl

    for who in (owner, viewer):
        with TestClient(app) as browser:
            browser.headers["accept"] = "text/html,application/xhtml+xml"
            assert login(browser, who.email).status_code == 303
            pages = crawl(browser, ["/incidents", f"/incidents/{iid}", "/settings", "/settings/webhooks",
                                    "/settings/connections", "/settings/members", "/settings/tokens",
                                    "/settings/monitors", f"/incidents/{iid}/postmortem/print"])
            assert len(pages) >= 15, sorted(pages)
            for url in pages:
                found = secrets.found_in(browser.get(url).text)
                if found:
                    leaks.append(f"page {url} as {who.actor.role}: {found}")

    # 4. nothing stored holds one in the clear: generation runs (prompt, raw response, evidence, error) and every
    #    other column of every table
    with db.transaction(rt.factory) as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                for column, value in row.items():
                    found = secrets.found_in(value if isinstance(value, str) else json.dumps(value, default=str))
                    if found:
                        leaks.append(f"stored {table.name}.{column}: {found}")

    assert not leaks, "secrets leaked:\n" + "\n".join(dict.fromkeys(leaks))
