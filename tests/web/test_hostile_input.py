"""Hostile JSON through every kind of body (issue 11, F5): lone surrogates, 1,000+ levels of nesting and 5,000-digit
numbers answer a 4xx problem and store nothing, through the API and every webhook receiver."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.models import Base
from blametrail.webhooks import service as webhooks

SURROGATE = '"\\ud800"'  # JSON text for a lone surrogate: valid JSON, not storable Unicode
DEEP = "[" * 1500 + "]" * 1500  # past the interpreter's recursion limit (RecursionError while parsing)
NESTED = "[" * 900 + "1" + "]" * 900  # parses, but no JSON column can take it (json.dumps recursion)
HUGE = "9" * 5000  # past Python's 4,300-digit int limit (ValueError while parsing)
PROBLEM = "application/problem+json"


def rows(rt) -> dict[str, int]:
    """Count the rows of every table: a refused request must leave every count as it was."""
    with db.transaction(rt.factory) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def assert_refused(r, rt, before: dict, statuses=(400, 422)) -> None:
    assert r.status_code in statuses, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["status"] == r.status_code and r.json()["detail"]
    assert rows(rt) == before


@pytest.fixture
def owner(factory):
    return factory.member(factory.org())


API_CASES = {
    "token name": ("post", "/api/v1/org/tokens", '{"name": %s}' % SURROGATE),
    "ai option": ("put", "/api/v1/org/ai", '{"engine": "builtin", "options": {"api_version": %s}}' % SURROGATE),
    "connection option": ("post", "/api/v1/connections", '{"name": "logs", "provider": "loki", "endpoint": '
                          '"http://10.0.0.5:3100", "options": {"tenant": %s}}' % SURROGATE),
    "connection signal": ("post", "/api/v1/connections", '{"name": "cw", "provider": "cloudwatch", "endpoint": '
                          '"eu-west-1", "signals": [{"name": "errors", "query": {"namespace": "AWS/ELB", "metric": '
                          '"HTTPCode_ELB_5XX", "dimensions": {"Service": %s}}}]}' % SURROGATE),
    "connection nested option": ("post", "/api/v1/connections", '{"name": "fake", "provider": "fake", '
                                 '"options": {"series": %s}}' % NESTED),
    "monitor unknown field": ("post", "/api/v1/monitors", '{"name": "m", "url": "http://10.0.0.7/", %s: 1}'
                              % SURROGATE),
    "monitor deep body": ("post", "/api/v1/monitors", DEEP),
    "monitor huge number": ("post", "/api/v1/monitors", '{"name": "m", "url": "http://10.0.0.7/", '
                            '"interval_seconds": %s}' % HUGE),
    "incident deep body": ("post", "/api/v1/incidents", '{"title": "x", "services": %s}' % DEEP),
}


@pytest.mark.parametrize("method,path,body", API_CASES.values(), ids=API_CASES.keys())
def test_api_bodies_are_refused_with_a_problem_and_store_nothing(client, rt, owner, method, path, body):
    before = rows(rt)
    r = client.request(method, path, content=body.encode(),
                       headers={**owner.headers, "Content-Type": "application/json"})
    assert_refused(r, rt, before)


def test_a_patch_with_a_lone_surrogate_changes_nothing(client, rt, owner):
    made = client.post("/api/v1/connections", headers=owner.headers, json={
        "name": "logs", "provider": "loki", "endpoint": "http://10.0.0.5:3100", "options": {"tenant": "t1"}})
    assert made.status_code == 201, made.text
    before = rows(rt)
    r = client.patch(f"/api/v1/connections/{made.json()['id']}", content=('{"options": {"tenant": %s}}'
                                                                            % SURROGATE).encode(),
                     headers={**owner.headers, "Content-Type": "application/json"})
    assert_refused(r, rt, before)
    assert client.get(f"/api/v1/connections/{made.json()['id']}", headers=owner.headers).json()["options"] == {
        "tenant": "t1"}


# --- webhook receivers ------------------------------------------------------------------------------------------

ALERT_PATHS = {"alertmanager": "alertmanager", "grafana": "grafana", "generic_alert": "alerts",
               "generic_deploy": "deploys", "github": "github"}
PAYLOADS = {
    "lone surrogate": '{"alerts": [{"name": "x", "status": "firing", "labels": {"service": %s}}], "version": "4", '
                      '"service": "api", "version_x": %s}' % (SURROGATE, SURROGATE),
    "5000-digit number": '{"alerts": [{"name": "x", "status": "firing", "labels": {"n": %s}}], "version": %s}'
                         % (HUGE, HUGE),
    "1500 levels deep": '{"alerts": %s, "deployment_status": %s}' % (DEEP, DEEP),
    "100 levels deep": '{"alerts": [%s], "deployment_status": %s}' % ("[" * 100 + "]" * 100, "[" * 100 + "]" * 100),
}


def _hook(rt, member, kind: str) -> tuple[str, str]:
    with db.transaction(rt.factory) as s:
        hook, secret = webhooks.create(session=s, actor=member.actor, box=rt.secret_box, kind=kind, name=kind,
                                       now=rt.clock.now())
        return f"/webhooks/{ALERT_PATHS[kind]}/{hook.uid}", secret


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
@pytest.mark.parametrize("kind", ALERT_PATHS)
def test_receivers_refuse_hostile_json_with_a_problem_and_store_nothing(client, rt, owner, kind, payload):
    path, secret = _hook(rt, owner, kind)
    body = payload.encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    if kind == "github":
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "deployment_status",
                   "X-GitHub-Delivery": "d-1",
                   "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    before = rows(rt)
    r = client.post(path, content=body, headers=headers)
    assert_refused(r, rt, before, statuses=(400,))
