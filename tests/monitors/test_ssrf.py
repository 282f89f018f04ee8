"""The SSRF guard on monitors: blocked targets are refused when saved (422, nothing stored) and when checked,
including a redirect hop (error kind "blocked"); the operator's allow list lets them through."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.monitors.engine import Scheduler
from blametrail.monitors.models import CheckResult, Monitor
from tests.monitors import LocalServer, api_payload
from tests.test_netguard import dns  # noqa: F401  (fixture)

METADATA = ("169.254.169.254 is a link-local/cloud metadata address; BlameTrail refuses it unless "
            "BLAMETRAIL_OUTBOUND_ALLOW lists it.")


@pytest.fixture
def owner(factory):
    return factory.member(factory.org(), "owner")


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def _monitors(rt) -> list[Monitor]:
    with db.transaction(rt.factory) as s:
        return list(s.scalars(select(Monitor)))


def test_a_metadata_target_is_422_and_nothing_is_stored(client, owner, rt):
    for url in ("http://169.254.169.254/latest/meta-data", "http://2852039166/", "http://[::ffff:169.254.169.254]/",
                "http://metadata.google.internal/"):
        r = client.post("/api/v1/monitors", json=api_payload(url=url), headers=owner.headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["type"] == "/problems/validation" and "BLAMETRAIL_OUTBOUND_ALLOW" in body["detail"]
        assert body["errors"] == [{"loc": ["body", "url"], "msg": body["detail"]}]
    assert _monitors(rt) == []


def test_changing_the_url_to_a_metadata_target_is_422_and_keeps_the_old_one(client, owner, server):
    mid = client.post("/api/v1/monitors", json=api_payload(url=server.url()), headers=owner.headers).json()["id"]
    r = client.patch(f"/api/v1/monitors/{mid}", json={"url": "http://169.254.169.254/"}, headers=owner.headers)
    assert r.status_code == 422 and r.json()["detail"] == METADATA
    assert client.get(f"/api/v1/monitors/{mid}", headers=owner.headers).json()["url"] == server.url()


def test_the_operator_settings_decide_at_save_time(client, owner, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "outbound_allow", "169.254.169.254")
    r = client.post("/api/v1/monitors", json=api_payload(url="http://169.254.169.254/"), headers=owner.headers)
    assert r.status_code == 201, r.text
    monkeypatch.setattr(rt.settings, "outbound_block_private", True)
    r = client.post("/api/v1/monitors", json=api_payload(name="db", url="http://10.0.0.5:8080/"),
                    headers=owner.headers)
    assert r.status_code == 422 and "BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE is on" in r.json()["detail"]


def _check_once(rt) -> CheckResult:
    scheduler = Scheduler(rt, owner="ssrf")
    try:
        assert scheduler.tick() == 1
    finally:
        scheduler.close()
    with db.transaction(rt.factory) as s:
        return s.scalars(select(CheckResult)).one()


def test_a_redirect_to_the_metadata_address_fails_the_check_as_blocked(client, owner, rt, server):
    server.redirects["/health"] = "http://169.254.169.254/latest/meta-data"
    r = client.post("/api/v1/monitors", json=api_payload(url=server.url(), failure_threshold=1), headers=owner.headers)
    assert r.status_code == 201, r.text
    result = _check_once(rt)
    # the guard refused the hop (the test suite's socket guard would have raised a RuntimeError instead)
    assert (result.ok, result.error_kind, result.error) == (False, "blocked", METADATA)
    assert dict(server.hits) == {"/health": 1}
    state = client.get(f"/api/v1/monitors/{r.json()['id']}", headers=owner.headers).json()
    assert state["state"] == "down" and state["last_error"] == METADATA


def test_the_allow_list_lets_the_redirect_through(client, owner, rt, server, dns, monkeypatch):  # noqa: F811
    dns.table["metadata.google.internal"] = [["127.0.0.1"]]
    server.redirects["/health"] = f"http://metadata.google.internal:{server.port}/computeMetadata"
    r = client.post("/api/v1/monitors", json=api_payload(url=server.url()), headers=owner.headers)
    assert r.status_code == 201, r.text
    monkeypatch.setattr(rt.settings, "outbound_allow", "metadata.google.internal")
    result = _check_once(rt)
    assert result.ok is True and result.status_code == 200, result.error
    assert dict(server.hits) == {"/health": 1, "/computeMetadata": 1}
