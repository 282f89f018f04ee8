"""Organizations are sealed: another organization's ids answer exactly like ids that never existed."""

from __future__ import annotations

import re

import pytest

API = "/api/v1"
MISSING = 987654  # an id no record has


@pytest.fixture
def world(client, factory, clock):
    """Org A (the caller) and org B with an open incident, a drafted postmortem and a deploy."""
    a_slug, b_slug = factory.org(plan="pro"), factory.org(plan="pro")
    a = {role: factory.member(a_slug, role) for role in ("owner", "member", "viewer")}
    b = factory.member(b_slug, "owner")

    def incident(who, title, services):
        r = client.post(f"{API}/incidents", json={"title": title, "services": services}, headers=who.headers)
        assert r.status_code == 201
        return r.json()["id"]

    b_open = incident(b, "B open", ["b-secret-service"])
    b_done = incident(b, "B resolved", ["b-secret-service"])
    assert client.post(f"{API}/incidents/{b_done}/resolve", headers=b.headers).status_code == 200
    b_deploy = client.post(f"{API}/deploys", headers=b.headers, json={
        "service": "checkout", "environment": "production", "version": "b-v1", "deployed_at": "2026-11-26T09:50:00Z",
        "commits": [{"sha": "beefbeef", "message": "B's change"}]}).json()["id"]
    a_inc = incident(a["owner"], "A incident", ["checkout"])
    clock.advance(seconds=61)  # regenerate would be allowed by the rate limit
    return {"a": a, "b": b, "b_open": b_open, "b_done": b_done, "b_deploy": b_deploy, "a_inc": a_inc}


def b_state(client, world) -> dict:
    b = world["b"]
    out = {}
    for iid in (world["b_open"], world["b_done"]):
        out[iid] = [client.get(f"{API}/incidents/{iid}{p}", headers=b.headers).json()
                    for p in ("", "/timeline", "/postmortem", "/postmortem/revisions")]
    out["deploy"] = client.get(f"{API}/deploys/{world['b_deploy']}", headers=b.headers).json()
    out["usage"] = client.get(f"{API}/org/usage", headers=b.headers).json()
    return out


def normalized(r, the_id: int) -> tuple:
    """The response with the id taken out of its text, so a foreign and a missing id can be compared."""
    text = re.sub(rf"\b{the_id}\b", "{id}", r.text)
    return r.status_code, r.headers["content-type"], text, r.headers.get("retry-after")


INCIDENT_ROUTES = [
    ("GET", "", None), ("GET", "/timeline", None),
    ("POST", "/updates", {"body": "sneaky update"}),
    ("POST", "/resolve", None),
    ("GET", "/postmortem", None), ("POST", "/postmortem", None),
    ("POST", "/postmortem/regenerate", {"overwrite_edited": True}),
    ("PATCH", "/postmortem", {"version": 2, "sections": {"summary": "overwritten by A"}}),
    ("POST", "/postmortem/publish", None),
    ("GET", "/postmortem/original", None), ("GET", "/postmortem/revisions", None),
    ("GET", "/postmortem/revisions/1", None), ("GET", "/postmortem/runs", None),
    ("GET", "/postmortem/export.md", None),
]


@pytest.mark.parametrize("role", ["owner", "member"])
@pytest.mark.parametrize(("method", "suffix", "body"), INCIDENT_ROUTES)
@pytest.mark.parametrize("target", ["b_open", "b_done"])
def test_foreign_incident_ids_answer_404_like_missing_ones(client, world, role, method, suffix, body, target):
    who = world["a"][role]
    before = b_state(client, world)
    foreign_id = world[target]
    foreign = client.request(method, f"{API}/incidents/{foreign_id}{suffix}", json=body, headers=who.headers)
    missing = client.request(method, f"{API}/incidents/{MISSING}{suffix}", json=body, headers=who.headers)

    assert foreign.status_code == 404, foreign.text  # existence is checked before the role: nothing leaks
    assert foreign.json()["type"] == "/problems/not-found"
    assert normalized(foreign, foreign_id) == normalized(missing, MISSING)
    assert b_state(client, world) == before


@pytest.mark.parametrize(("method", "suffix", "body"), [r for r in INCIDENT_ROUTES if r[0] != "GET"])
def test_viewer_gets_the_same_answer_for_foreign_and_missing_ids(client, world, method, suffix, body):
    who = world["a"]["viewer"]
    before = b_state(client, world)
    foreign = client.request(method, f"{API}/incidents/{world['b_done']}{suffix}", json=body, headers=who.headers)
    missing = client.request(method, f"{API}/incidents/{MISSING}{suffix}", json=body, headers=who.headers)
    assert foreign.status_code == 404, foreign.text
    assert normalized(foreign, world["b_done"]) == normalized(missing, MISSING)
    assert b_state(client, world) == before


def test_foreign_deploy_answers_404_like_a_missing_one(client, world):
    who = world["a"]["owner"]
    foreign = client.get(f"{API}/deploys/{world['b_deploy']}", headers=who.headers)
    missing = client.get(f"{API}/deploys/{MISSING}", headers=who.headers)
    assert foreign.status_code == 404 and foreign.json()["type"] == "/problems/not-found"
    assert normalized(foreign, world["b_deploy"]) == normalized(missing, MISSING)


def test_foreign_token_id_answers_404_like_a_missing_one(client, world):
    b_tokens = client.get(f"{API}/org/tokens", headers=world["b"].headers).json()
    b_token = b_tokens[0]["id"]
    who = world["a"]["owner"]
    foreign = client.delete(f"{API}/org/tokens/{b_token}", headers=who.headers)
    missing = client.delete(f"{API}/org/tokens/{MISSING}", headers=who.headers)
    assert foreign.status_code == 404
    assert normalized(foreign, b_token) == normalized(missing, MISSING)
    assert client.get(f"{API}/incidents", headers=world["b"].headers).status_code == 200


def test_nothing_of_another_organization_appears_in_lists(client, world):
    who = world["a"]["owner"]
    b = world["b"]
    incidents = client.get(f"{API}/incidents?limit=200", headers=who.headers).json()
    assert [i["id"] for i in incidents["items"]] == [world["a_inc"]]
    for query in ("?status=open", "?status=resolved", "?service=b-secret-service", "?service=checkout"):
        items = client.get(f"{API}/incidents{query}", headers=who.headers).json()["items"]
        assert {i["id"] for i in items} <= {world["a_inc"]}, query
    assert client.get(f"{API}/deploys", headers=who.headers).json() == []
    assert client.get(f"{API}/deploys?service=checkout", headers=who.headers).json() == []
    # the same service name in both organizations: A's timeline never shows B's deploy
    timeline = client.get(f"{API}/incidents/{world['a_inc']}/timeline", headers=who.headers).json()
    assert [t["source"] for t in timeline] == ["status"]
    members = client.get(f"{API}/org/members", headers=who.headers).json()
    assert b.email not in {m["email"] for m in members}
    assert {m["email"] for m in members} == {m.email for m in world["a"].values()}
    tokens = client.get(f"{API}/org/tokens", headers=who.headers).json()
    assert not any(b.token.startswith(t["prefix"]) for t in tokens)
    assert len(tokens) == 3
    usage = client.get(f"{API}/org/usage", headers=who.headers).json()
    assert usage["used"] == 0  # B's postmortem counts for B only
    assert client.get(f"{API}/org/usage", headers=b.headers).json()["used"] == 1
    settings = client.get(f"{API}/org/settings", headers=who.headers).json()
    assert settings["slug"] == who.org_slug


def test_a_resolution_in_one_org_does_not_touch_the_other(client, world):
    who = world["a"]["owner"]
    before = b_state(client, world)
    client.patch(f"{API}/org/settings", json={"ai_enabled": False}, headers=who.headers)
    assert client.post(f"{API}/incidents/{world['a_inc']}/resolve", headers=who.headers).status_code == 200
    assert client.get(f"{API}/org/settings", headers=world["b"].headers).json()["ai_enabled"] is True
    assert b_state(client, world) == before
