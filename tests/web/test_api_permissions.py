"""PRODUCT.md's role table through the API: every row for every role; refusals are 403 and change nothing."""

from __future__ import annotations

import pytest

API = "/api/v1"
ROLES = ("owner", "admin", "member", "viewer")
WRITERS = {"owner", "admin", "member"}  # create/update/resolve, generate/regenerate/edit
PUBLISHERS = {"owner", "admin"}
MANAGERS = {"owner", "admin"}
SETTINGS = {"owner"}


def assert_forbidden(r) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    body = r.json()
    assert body["type"] == "/problems/forbidden"
    assert body["status"] == 403
    assert body["title"] and body["detail"]


@pytest.fixture
def team(factory):
    return factory.team(plan="pro")


def open_incident(client, who, **fields) -> dict:
    r = client.post(f"{API}/incidents", json={"title": "Checkout errors", "services": ["checkout"], **fields},
                    headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()


def drafted(client, who) -> tuple[int, dict]:
    inc = open_incident(client, who)
    assert client.post(f"{API}/incidents/{inc['id']}/resolve", headers=who.headers).status_code == 200
    pm = client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=who.headers).json()
    assert pm["status"] == "draft"
    return inc["id"], pm


def snapshot(client, who, incident_id: int) -> dict:
    """Everything a write could have changed about one incident and its postmortem."""
    pm = client.get(f"{API}/incidents/{incident_id}/postmortem", headers=who.headers)
    revs = client.get(f"{API}/incidents/{incident_id}/postmortem/revisions", headers=who.headers)
    return {
        "incident": client.get(f"{API}/incidents/{incident_id}", headers=who.headers).json(),
        "timeline": client.get(f"{API}/incidents/{incident_id}/timeline", headers=who.headers).json(),
        "postmortem": (pm.status_code, pm.json()),
        "revisions": (revs.status_code, revs.json()),
        "usage": client.get(f"{API}/org/usage", headers=who.headers).json(),
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_incidents_and_postmortems(client, team, role):
    who = team[role]
    iid, pm = drafted(client, team["owner"])
    deploy = client.post(f"{API}/deploys", headers=team["owner"].headers, json={
        "service": "checkout", "environment": "production", "version": "v1", "deployed_at": "2026-11-26T09:00:00Z",
        "commits": []}).json()
    for path in ("/incidents", f"/incidents/{iid}", f"/incidents/{iid}/timeline", f"/incidents/{iid}/postmortem",
                 f"/incidents/{iid}/postmortem/original", f"/incidents/{iid}/postmortem/revisions",
                 f"/incidents/{iid}/postmortem/revisions/1", f"/incidents/{iid}/postmortem/export.md",
                 "/deploys", f"/deploys/{deploy['id']}", "/org/settings", "/org/usage"):
        r = client.get(API + path, headers=who.headers)
        assert r.status_code == 200, (path, r.status_code, r.text)
    assert client.get(f"{API}/incidents/{iid}/postmortem", headers=who.headers).json() == pm


@pytest.mark.parametrize("role", ROLES)
def test_create_incident(client, team, role):
    r = client.post(f"{API}/incidents", json={"title": f"opened by {role}"}, headers=team[role].headers)
    items = client.get(f"{API}/incidents", headers=team["owner"].headers).json()["items"]
    if role in WRITERS:
        assert r.status_code == 201
        assert [i["title"] for i in items] == [f"opened by {role}"]
    else:
        assert_forbidden(r)
        assert items == []


@pytest.mark.parametrize("role", ROLES)
def test_post_update(client, team, role):
    iid = open_incident(client, team["owner"])["id"]
    before = snapshot(client, team["owner"], iid)
    r = client.post(f"{API}/incidents/{iid}/updates", json={"body": f"update from {role}"}, headers=team[role].headers)
    after = snapshot(client, team["owner"], iid)
    if role in WRITERS:
        assert r.status_code == 201
        assert r.json()["author"] == team[role].email
        assert [t["description"] for t in after["timeline"] if t["source"] == "update"] == [f"update from {role}"]
    else:
        assert_forbidden(r)
        assert after == before


@pytest.mark.parametrize("role", ROLES)
def test_resolve(client, team, role):
    iid = open_incident(client, team["owner"])["id"]
    before = snapshot(client, team["owner"], iid)
    r = client.post(f"{API}/incidents/{iid}/resolve", headers=team[role].headers)
    after = snapshot(client, team["owner"], iid)
    if role in WRITERS:
        assert r.status_code == 200
        assert (after["incident"]["status"], after["incident"]["resolved_by"]) == ("resolved", team[role].email)
        assert after["postmortem"][0] == 200 and after["usage"]["used"] == 1
    else:
        assert_forbidden(r)
        assert after == before
        assert after["incident"]["status"] == "open" and after["postmortem"][0] == 404


@pytest.mark.parametrize("role", ROLES)
def test_generate(client, team, role):
    owner = team["owner"]
    client.patch(f"{API}/org/settings", json={"ai_enabled": False}, headers=owner.headers)
    iid = open_incident(client, owner)["id"]
    client.post(f"{API}/incidents/{iid}/resolve", headers=owner.headers)
    client.patch(f"{API}/org/settings", json={"ai_enabled": True}, headers=owner.headers)
    before = snapshot(client, owner, iid)
    assert before["postmortem"][0] == 404 and before["usage"]["used"] == 0

    r = client.post(f"{API}/incidents/{iid}/postmortem", headers=team[role].headers)
    after = snapshot(client, owner, iid)
    if role in WRITERS:
        assert r.status_code == 202
        assert after["postmortem"][0] == 200 and after["postmortem"][1]["status"] == "draft"
        assert after["usage"]["used"] == 1
    else:
        assert_forbidden(r)
        assert after == before


@pytest.mark.parametrize("role", ROLES)
def test_regenerate(client, team, role, clock):
    iid, pm = drafted(client, team["owner"])
    clock.advance(seconds=60)
    before = snapshot(client, team["owner"], iid)
    r = client.post(f"{API}/incidents/{iid}/postmortem/regenerate", json={}, headers=team[role].headers)
    after = snapshot(client, team["owner"], iid)
    if role in WRITERS:
        assert r.status_code == 202
        assert [v["kind"] for v in after["revisions"][1]] == ["ai", "ai"]
        assert after["postmortem"][1]["version"] == pm["version"] + 1
    else:
        assert_forbidden(r)
        assert after == before


@pytest.mark.parametrize("role", ROLES)
def test_edit(client, team, role):
    iid, pm = drafted(client, team["owner"])
    before = snapshot(client, team["owner"], iid)
    r = client.patch(f"{API}/incidents/{iid}/postmortem", json={"version": pm["version"], "sections": {
        "summary": f"Edited by {role}"}}, headers=team[role].headers)
    after = snapshot(client, team["owner"], iid)
    if role in WRITERS:
        assert r.status_code == 200
        assert after["postmortem"][1]["sections"]["summary"] == f"Edited by {role}"
        assert after["revisions"][1][-1]["author"] == team[role].email
    else:
        assert_forbidden(r)
        assert after == before
        assert after["postmortem"][1]["sections"]["summary"] == pm["sections"]["summary"]


@pytest.mark.parametrize("role", ROLES)
def test_publish(client, team, role):
    iid, pm = drafted(client, team["owner"])
    before = snapshot(client, team["owner"], iid)
    r = client.post(f"{API}/incidents/{iid}/postmortem/publish", headers=team[role].headers)
    after = snapshot(client, team["owner"], iid)
    if role in PUBLISHERS:
        assert r.status_code == 200
        assert (after["postmortem"][1]["status"], after["postmortem"][1]["published_by"]) == ("published", team[role].email)
        assert [v["kind"] for v in after["revisions"][1]] == ["ai", "publish"]
    else:
        assert_forbidden(r)
        assert after == before
        assert after["postmortem"][1]["status"] == "draft" and after["postmortem"][1]["published_at"] is None


@pytest.mark.parametrize("role", ROLES)
def test_org_settings_patch(client, team, role):
    r = client.patch(f"{API}/org/settings", json={"ai_enabled": False}, headers=team[role].headers)
    ai = client.get(f"{API}/org/settings", headers=team["owner"].headers).json()["ai_enabled"]
    if role in SETTINGS:
        assert r.status_code == 200 and ai is False
    else:
        assert_forbidden(r)
        assert ai is True


@pytest.mark.parametrize("role", ROLES)
def test_manage_tokens_of_others(client, team, factory, role):
    victim = factory.member(team["owner"].org_slug, "member")
    tokens = client.get(f"{API}/org/tokens", headers=team["owner"].headers).json()
    (token,) = [t for t in tokens if victim.token.startswith(t["prefix"])]
    r = client.delete(f"{API}/org/tokens/{token['id']}", headers=team[role].headers)
    if role in MANAGERS:
        assert r.status_code == 200
        assert client.get(f"{API}/incidents", headers=victim.headers).status_code == 401
    else:
        assert_forbidden(r)
        assert client.get(f"{API}/incidents", headers=victim.headers).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_anyone_may_revoke_their_own_token(client, team, role):
    me = team[role]
    tokens = client.get(f"{API}/org/tokens", headers=me.headers).json()
    (token,) = [t for t in tokens if me.token.startswith(t["prefix"])]
    assert client.delete(f"{API}/org/tokens/{token['id']}", headers=me.headers).status_code == 200
    assert client.get(f"{API}/incidents", headers=me.headers).status_code == 401
