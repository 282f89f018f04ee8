"""The JSON API against shared/API.md: every endpoint end to end, payloads, and problem+json errors."""

from __future__ import annotations

import re

import pytest

API = "/api/v1"
PROBLEM = "application/problem+json"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SECTION_KEYS = {"summary", "severity", "customer_impact", "timeline", "root_cause", "contributing_factors",
                "what_went_well", "what_went_poorly", "action_items", "confidence"}
POSTMORTEM_KEYS = {"id", "incident_id", "status", "version", "engine", "error", "sections", "created_at",
                   "generated_at", "published_at", "published_by", "updated_at"}
HEADINGS = ("Summary", "Severity", "Customer impact", "Timeline", "Root cause", "Contributing factors",
            "What went well", "What went poorly", "Action items", "Confidence")


def assert_fields(body: dict, expected: dict) -> None:
    """Assert every field the contract names has exactly this value (API.md allows additions, never changes)."""
    assert {k: body.get(k, "<missing>") for k in expected} == expected


def assert_problem(r, status: int, slug: str) -> dict:
    """Assert an RFC 9457 problem response with this status and slug; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == PROBLEM
    body = r.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture
def owner(factory):
    return factory.member(factory.org(plan="pro"), "owner")


def new_incident(client, who, **fields) -> dict:
    r = client.post(f"{API}/incidents", json={"title": "Checkout errors", **fields}, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()


def resolve(client, who, incident_id: int, **body) -> dict:
    r = client.post(f"{API}/incidents/{incident_id}/resolve", json=body or None, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def drafted(client, who, **fields) -> tuple[dict, dict]:
    """An incident resolved by `who` with its auto-drafted postmortem."""
    inc = new_incident(client, who, **fields)
    resolve(client, who, inc["id"])
    r = client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=who.headers)
    assert r.status_code == 200, r.text
    return inc, r.json()


# --- health and authentication ------------------------------------------------------------------

def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


ENDPOINTS = [
    ("POST", "/incidents"), ("GET", "/incidents"), ("GET", "/incidents/1"), ("POST", "/incidents/1/updates"),
    ("POST", "/incidents/1/resolve"), ("GET", "/incidents/1/timeline"), ("POST", "/deploys"),
    ("GET", "/incidents/1/postmortem"), ("POST", "/incidents/1/postmortem"),
    ("POST", "/incidents/1/postmortem/regenerate"), ("PATCH", "/incidents/1/postmortem"),
    ("POST", "/incidents/1/postmortem/publish"), ("GET", "/incidents/1/postmortem/original"),
    ("GET", "/incidents/1/postmortem/revisions"), ("GET", "/incidents/1/postmortem/export.md"),
    ("GET", "/org/settings"), ("PATCH", "/org/settings"), ("GET", "/org/usage"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_requires_a_token(client, owner, method, path):
    new_incident(client, owner)
    r = client.request(method, API + path, json={})
    body = assert_problem(r, 401, "unauthenticated")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize("header", ["Bearer bt_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "bt_raw-token"])
def test_bad_tokens_are_401(client, owner, header):
    assert_problem(client.get(f"{API}/incidents", headers={"Authorization": header}), 401, "unauthenticated")


def test_revoked_token_is_401(client, factory, owner):
    other = factory.member(owner.org_slug, "member")
    assert client.get(f"{API}/incidents", headers=other.headers).status_code == 200
    tokens = client.get(f"{API}/org/tokens", headers=owner.headers).json()
    (token,) = [t for t in tokens if other.token.startswith(t["prefix"])]
    r = client.delete(f"{API}/org/tokens/{token['id']}", headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["revoked_at"] == "2026-11-26T10:00:00Z"
    assert_problem(client.get(f"{API}/incidents", headers=other.headers), 401, "unauthenticated")
    assert client.get(f"{API}/incidents", headers=owner.headers).status_code == 200


def test_forbidden_not_found_and_validation_problems(client, factory, owner):
    viewer = factory.member(owner.org_slug, "viewer")
    body = assert_problem(client.post(f"{API}/incidents", json={"title": "x"}, headers=viewer.headers), 403, "forbidden")
    assert "viewer" in body["detail"]
    body = assert_problem(client.get(f"{API}/incidents/424242", headers=owner.headers), 404, "not-found")
    assert "424242" in body["detail"]
    assert_problem(client.get(f"{API}/incidents/424242/postmortem", headers=owner.headers), 404, "not-found")
    assert_problem(client.get(f"{API}/deploys/424242", headers=owner.headers), 404, "not-found")
    body = assert_problem(client.post(f"{API}/incidents", json={}, headers=owner.headers), 422, "validation")
    assert any(e["loc"][-1] == "title" for e in body["errors"])
    body = assert_problem(client.post(f"{API}/incidents", json={"title": "x", "severity": "SEV-9"},
                                      headers=owner.headers), 422, "validation")
    assert [e["loc"][-1] for e in body["errors"]] == ["severity"]
    body = assert_problem(client.post(f"{API}/incidents", json={"title": "x", "started_at": "2026-11-26T09:00:00"},
                                      headers=owner.headers), 422, "validation")
    assert [e["loc"][-1] for e in body["errors"]] == ["started_at"]
    body = assert_problem(client.post(f"{API}/incidents", content="not json", headers={**owner.headers,
                                      "content-type": "application/json"}), 422, "validation")
    assert body["errors"]
    assert client.get(f"{API}/incidents", headers=owner.headers).json()["items"] == []


# --- incidents ----------------------------------------------------------------------------------

def test_create_incident_with_every_field(client, owner):
    r = client.post(f"{API}/incidents", headers=owner.headers, json={
        "title": "Checkout 500s", "severity": "SEV-2", "services": ["checkout", " api ", "checkout"],
        "started_at": "2026-11-26T09:30:00Z", "description": "Customers cannot pay."})
    assert r.status_code == 201
    body = r.json()
    assert isinstance(body["id"], int)
    assert_fields(body, {
        "id": body["id"], "title": "Checkout 500s", "description": "Customers cannot pay.", "severity": "SEV-2",
        "status": "open", "services": ["api", "checkout"], "started_at": "2026-11-26T09:30:00Z",
        "resolved_at": None, "resolved_by": None, "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z", "duration_minutes": None, "postmortem_status": None,
        "postmortem_skip_reason": None,
    })
    assert client.get(f"{API}/incidents/{body['id']}", headers=owner.headers).json() == body


def test_create_incident_defaults(client, owner):
    body = new_incident(client, owner)
    assert (body["severity"], body["services"], body["description"]) == (None, [], "")
    assert body["started_at"] == "2026-11-26T10:00:00Z"


def test_list_filters_by_status_and_service_newest_first(client, owner):
    a = new_incident(client, owner, title="a", services=["checkout"])
    b = new_incident(client, owner, title="b", services=["payments"])
    c = new_incident(client, owner, title="c", services=["checkout", "payments"])
    d = new_incident(client, owner, title="d")
    resolve(client, owner, b["id"])
    resolve(client, owner, c["id"])

    def ids(query: str) -> list[int]:
        r = client.get(f"{API}/incidents{query}", headers=owner.headers)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids("") == [d["id"], c["id"], b["id"], a["id"]]
    assert ids("?status=open") == [d["id"], a["id"]]
    assert ids("?status=resolved") == [c["id"], b["id"]]
    assert ids("?service=checkout") == [c["id"], a["id"]]
    assert ids("?service=payments&status=open") == []
    assert ids("?service=nope") == []
    items = client.get(f"{API}/incidents?status=resolved", headers=owner.headers).json()["items"]
    assert {i["status"] for i in items} == {"resolved"}
    assert_problem(client.get(f"{API}/incidents?status=closed", headers=owner.headers), 422, "validation")


def test_list_paginates_with_limit_and_cursor(client, owner):
    created = [new_incident(client, owner, title=f"incident {n}")["id"] for n in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        r = client.get(f"{API}/incidents", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                       headers=owner.headers)
        assert r.status_code == 200
        page = r.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(created, reverse=True)
    full = client.get(f"{API}/incidents", params={"limit": 5}, headers=owner.headers).json()
    assert len(full["items"]) == 5 and full["next_cursor"] is None
    assert_problem(client.get(f"{API}/incidents?limit=0", headers=owner.headers), 422, "validation")
    assert_problem(client.get(f"{API}/incidents?limit=201", headers=owner.headers), 422, "validation")
    assert_problem(client.get(f"{API}/incidents?cursor=abc", headers=owner.headers), 422, "validation")


def test_post_update_backfills_and_refuses_the_future(client, owner, clock):
    inc = new_incident(client, owner, started_at="2026-11-26T09:00:00Z")
    r = client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": "Rolled back v2", "at": "2026-11-26T09:20:00Z"},
                    headers=owner.headers)
    assert r.status_code == 201
    body = r.json()
    assert_fields(body, {"id": body["id"], "evidence_id": f"upd_{body['id']}", "incident_id": inc["id"],
                         "at": "2026-11-26T09:20:00Z", "body": "Rolled back v2", "author": owner.email,
                         "created_at": "2026-11-26T10:00:00Z"})
    clock.advance(minutes=5)
    now_update = client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": "Watching"}, headers=owner.headers)
    assert now_update.status_code == 201 and now_update.json()["at"] == "2026-11-26T10:05:00Z"

    future = client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": "Later", "at": "2026-11-26T10:05:01Z"},
                         headers=owner.headers)
    problem = assert_problem(future, 422, "validation")
    assert problem["errors"] and problem["errors"][0]["loc"][-1] == "at"
    assert_problem(client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": ""}, headers=owner.headers),
                   422, "validation")
    assert_problem(client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": "x", "at": "2026-11-26T09:00:00"},
                               headers=owner.headers), 422, "validation")

    updates = [t for t in client.get(f"{API}/incidents/{inc['id']}/timeline", headers=owner.headers).json()
               if t["source"] == "update"]
    assert [(u["at"], u["description"]) for u in updates] == [("2026-11-26T09:20:00Z", "Rolled back v2"),
                                                              ("2026-11-26T10:05:00Z", "Watching")]


def test_resolve_records_who_and_when_and_only_once(client, factory, owner, clock):
    member = factory.member(owner.org_slug, "member")
    inc = new_incident(client, owner, started_at="2026-11-26T09:00:00Z")
    clock.advance(minutes=30)
    assert_problem(client.post(f"{API}/incidents/{inc['id']}/resolve", json={"resolved_at": "2026-11-26T10:31:00Z"},
                               headers=member.headers), 422, "validation")
    assert_problem(client.post(f"{API}/incidents/{inc['id']}/resolve", json={"resolved_at": "2026-11-26T08:59:00Z"},
                               headers=member.headers), 422, "validation")
    body = resolve(client, member, inc["id"], resolved_at="2026-11-26T10:20:00Z")
    assert body["status"] == "resolved"
    assert body["resolved_by"] == member.email
    assert body["resolved_at"] == "2026-11-26T10:20:00Z"
    assert body["duration_minutes"] == 80
    assert body["updated_at"] == "2026-11-26T10:30:00Z"

    again = client.post(f"{API}/incidents/{inc['id']}/resolve", headers=owner.headers)
    assert_problem(again, 409, "invalid-state")
    got = client.get(f"{API}/incidents/{inc['id']}", headers=owner.headers).json()
    assert (got["resolved_by"], got["resolved_at"]) == (member.email, "2026-11-26T10:20:00Z")
    statuses = [t for t in client.get(f"{API}/incidents/{inc['id']}/timeline", headers=owner.headers).json()
                if t["source"] == "status"]
    assert [(s["data"]["status"], s["at"]) for s in statuses] == [("open", "2026-11-26T09:00:00Z"),
                                                                  ("resolved", "2026-11-26T10:20:00Z")]


def test_resolve_without_body_uses_now(client, owner):
    body = resolve(client, owner, new_incident(client, owner)["id"])
    assert body["resolved_at"] == "2026-11-26T10:00:00Z" and body["resolved_by"] == owner.email


# --- deploys and the timeline --------------------------------------------------------------------

def deploy(client, who, service: str, version: str, at: str, commits: list | None = None) -> dict:
    r = client.post(f"{API}/deploys", headers=who.headers, json={
        "service": service, "environment": "production", "version": version, "deployed_at": at,
        "commits": commits or []})
    assert r.status_code == 201, r.text
    return r.json()


def test_deploy_with_commits(client, owner):
    r = client.post(f"{API}/deploys", headers=owner.headers, json={
        "service": "checkout", "environment": "production", "version": "v2.3.1", "deployed_at": "2026-11-26T09:40:00Z",
        "commits": [
            {"sha": "ABCDEF1234", "author": "dana@example.com", "message": "Raise pool size",
             "files": ["db/pool.py"], "committed_at": "2026-11-26T09:00:00Z"},
            {"sha": "0123abcd", "author": None, "message": "Bump deps", "files": [], "committed_at": None},
        ]})
    assert r.status_code == 201
    body = r.json()
    c1, c2 = body["commits"]
    commits = [{k: c[k] for k in ("evidence_id", "sha", "author", "message", "files", "committed_at")}
               for c in body["commits"]]
    assert_fields({**body, "commits": commits}, {
        "id": body["id"], "evidence_id": f"deploy_{body['id']}", "service": "checkout", "environment": "production",
        "version": "v2.3.1", "deployed_at": "2026-11-26T09:40:00Z", "created_at": "2026-11-26T10:00:00Z",
        "commits": [
            {"evidence_id": c1["evidence_id"], "sha": "abcdef1234", "author": "dana@example.com",
             "message": "Raise pool size", "files": ["db/pool.py"], "committed_at": "2026-11-26T09:00:00Z"},
            {"evidence_id": c2["evidence_id"], "sha": "0123abcd", "author": None, "message": "Bump deps", "files": [],
             "committed_at": None},
        ],
    })
    assert re.match(r"^commit_\d+$", c1["evidence_id"]) and c1["evidence_id"] != c2["evidence_id"]
    assert client.get(f"{API}/deploys/{body['id']}", headers=owner.headers).json() == body
    assert_problem(client.post(f"{API}/deploys", headers=owner.headers, json={
        "service": "checkout", "version": "v1", "deployed_at": "2026-11-26T09:40:00Z",
        "commits": [{"sha": "not-a-sha"}]}), 422, "validation")
    assert_problem(client.post(f"{API}/deploys", headers=owner.headers, json={
        "service": "checkout", "version": "v1", "deployed_at": "2026-11-26T09:40:00"}), 422, "validation")


def test_timeline_merges_status_updates_and_deploys_of_the_incidents_services(client, factory, owner, clock):
    inc = new_incident(client, owner, services=["checkout"], started_at="2026-11-26T09:50:00Z")
    too_early = deploy(client, owner, "checkout", "v1", "2026-11-26T07:49:00Z")  # before started_at − 120 min
    before = deploy(client, owner, "checkout", "v2", "2026-11-26T09:40:00Z",
                    commits=[{"sha": "abc1234", "author": "dana", "message": "pool", "files": ["db.py"]}])
    deploy(client, owner, "payments", "v9", "2026-11-26T09:45:00Z")  # another service
    other_org = factory.member(factory.org(), "owner")
    deploy(client, other_org, "checkout", "v7", "2026-11-26T09:41:00Z")  # same service, another organization
    upd = client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": "Rolling back", "at": "2026-11-26T09:55:00Z"},
                      headers=owner.headers).json()
    clock.advance(minutes=20)
    during = deploy(client, owner, "checkout", "v3", "2026-11-26T10:05:00Z")
    resolve(client, owner, inc["id"])  # 10:20
    deploy(client, owner, "checkout", "v4", "2026-11-26T10:24:00Z")  # after the window

    r = client.get(f"{API}/incidents/{inc['id']}/timeline", headers=owner.headers)
    assert r.status_code == 200
    items = r.json()
    assert [(i["at"], i["source"], i["evidence_id"]) for i in items] == [
        ("2026-11-26T09:40:00Z", "deploy", before["evidence_id"]),
        ("2026-11-26T09:50:00Z", "status", items[1]["evidence_id"]),
        ("2026-11-26T09:55:00Z", "update", upd["evidence_id"]),
        ("2026-11-26T10:05:00Z", "deploy", during["evidence_id"]),
        ("2026-11-26T10:20:00Z", "status", items[4]["evidence_id"]),
    ]
    assert too_early["evidence_id"] not in {i["evidence_id"] for i in items}
    assert items[1]["data"] == {"status": "open"} and items[4]["data"] == {"status": "resolved"}
    assert items[2]["description"] == "Rolling back" and items[2]["author"] == owner.email
    assert items[0]["data"]["service"] == "checkout" and items[0]["data"]["version"] == "v2"
    assert [c["sha"] for c in items[0]["data"]["commits"]] == ["abc1234"]
    assert items[0]["data"]["commits"][0]["evidence_id"] == before["commits"][0]["evidence_id"]


def test_deploy_list_filters_by_service(client, owner):
    a = deploy(client, owner, "checkout", "v1", "2026-11-26T09:00:00Z")
    b = deploy(client, owner, "payments", "v1", "2026-11-26T09:30:00Z")
    assert [d["id"] for d in client.get(f"{API}/deploys", headers=owner.headers).json()] == [b["id"], a["id"]]
    assert [d["id"] for d in client.get(f"{API}/deploys?service=checkout", headers=owner.headers).json()] == [a["id"]]


# --- postmortems -------------------------------------------------------------------------------

def assert_postmortem_shape(pm: dict) -> None:
    """Assert the postmortem object of API.md: its keys, and every section with its keys and value types."""
    assert POSTMORTEM_KEYS <= set(pm), POSTMORTEM_KEYS - set(pm)
    assert isinstance(pm["id"], int) and isinstance(pm["incident_id"], int) and isinstance(pm["version"], int)
    assert pm["status"] in {"queued", "generating", "draft", "edited", "published", "failed"}
    for key in ("created_at", "updated_at"):
        assert ISO_Z.match(pm[key]), (key, pm[key])
    for key in ("generated_at", "published_at"):
        assert pm[key] is None or ISO_Z.match(pm[key]), (key, pm[key])
    s = pm["sections"]
    if s is None:
        return
    assert set(s) == SECTION_KEYS
    assert isinstance(s["summary"], str) and s["summary"]
    assert s["severity"] in {"SEV-1", "SEV-2", "SEV-3", "SEV-4"}
    assert set(s["customer_impact"]) == {"description", "duration_minutes", "affected_services"}
    assert isinstance(s["customer_impact"]["description"], str)
    assert s["customer_impact"]["duration_minutes"] is None or isinstance(s["customer_impact"]["duration_minutes"], int)
    assert all(isinstance(x, str) for x in s["customer_impact"]["affected_services"])
    assert isinstance(s["timeline"], list)
    for item in s["timeline"]:
        # `after_resolution` is optional (present, as true, only on events after the resolution)
        assert {"at", "source", "description", "evidence"} <= set(item) <= {"at", "source", "description", "evidence",
                                                                            "after_resolution"}
        assert item.get("after_resolution", True) is True
        assert ISO_Z.match(item["at"]), item["at"]
        assert item["source"] in {"monitor", "deploy", "alert", "metric", "log", "update", "status"}
        assert isinstance(item["description"], str) and all(isinstance(e, str) for e in item["evidence"])
    assert isinstance(s["root_cause"], str)
    for key in ("contributing_factors", "what_went_well", "what_went_poorly"):
        assert isinstance(s[key], list) and all(isinstance(x, str) for x in s[key])
    for item in s["action_items"]:
        # `kind` (detect|mitigate|prevent) and `evidence` (ids) are optional additions
        assert {"title", "priority", "suggested_owner"} <= set(item) <= {"title", "priority", "suggested_owner", "kind",
                                                                        "evidence"}
        assert item.get("kind", "detect") in {"detect", "mitigate", "prevent"}
        assert all(isinstance(e, str) for e in item.get("evidence", []))
        assert item["priority"] in {"high", "medium", "low"}
        assert item["suggested_owner"] is None or isinstance(item["suggested_owner"], str)
    assert set(s["confidence"]) == {"level", "reason"}
    assert s["confidence"]["level"] in {"high", "medium", "low"}


def test_postmortem_404_before_then_drafted_on_resolve_with_the_contract_shape(client, owner):
    inc = new_incident(client, owner, title="Checkout 500s", severity="SEV-2", services=["checkout"],
                       started_at="2026-11-26T09:30:00Z")
    body = assert_problem(client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=owner.headers), 404, "not-found")
    assert str(inc["id"]) in body["detail"]
    client.post(f"{API}/incidents/{inc['id']}/updates", json={"body": "Rolled back the deploy", "at": "2026-11-26T09:45:00Z"},
                headers=owner.headers)
    resolve(client, owner, inc["id"])

    r = client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=owner.headers)
    assert r.status_code == 200
    pm = r.json()
    assert_postmortem_shape(pm)
    assert pm["incident_id"] == inc["id"]
    assert (pm["status"], pm["version"], pm["engine"], pm["error"]) == ("draft", 2, "builtin", None)
    assert (pm["created_at"], pm["generated_at"], pm["published_at"], pm["published_by"]) == (
        "2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z", None, None)
    assert pm["sections"]["severity"] == "SEV-2"
    assert pm["sections"]["customer_impact"]["duration_minutes"] == 30
    assert pm["sections"]["customer_impact"]["affected_services"] == ["checkout"]
    assert any("upd_" in e for item in pm["sections"]["timeline"] for e in item["evidence"])
    got = client.get(f"{API}/incidents/{inc['id']}", headers=owner.headers).json()
    assert got["postmortem_status"] == "draft" and got["postmortem_skip_reason"] is None


def test_generate_returns_202_queued_then_drafts(client, owner):
    client.patch(f"{API}/org/settings", json={"ai_enabled": False}, headers=owner.headers)
    inc = new_incident(client, owner)
    resolve(client, owner, inc["id"])
    assert_problem(client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=owner.headers), 404, "not-found")
    client.patch(f"{API}/org/settings", json={"ai_enabled": True}, headers=owner.headers)

    r = client.post(f"{API}/incidents/{inc['id']}/postmortem", headers=owner.headers)
    assert r.status_code == 202
    queued = r.json()
    assert_postmortem_shape(queued)
    assert (queued["status"], queued["version"], queued["sections"], queued["generated_at"]) == ("queued", 1, None, None)
    pm = client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=owner.headers).json()
    assert pm["id"] == queued["id"] and pm["status"] == "draft" and pm["version"] == 2
    assert_postmortem_shape(pm)


def test_patch_publish_original_revisions(client, factory, owner, clock):
    member = factory.member(owner.org_slug, "member")
    inc, pm = drafted(client, owner, services=["checkout"])
    url = f"{API}/incidents/{inc['id']}/postmortem"
    ai_sections = pm["sections"]
    clock.advance(minutes=3)

    r = client.patch(url, json={"version": pm["version"], "sections": {
        "summary": "Checkout failed for 30 minutes.", "action_items": [{"title": "Add a canary", "priority": "high"}]}},
        headers=member.headers)
    assert r.status_code == 200, r.text
    edited = r.json()
    assert_postmortem_shape(edited)
    assert (edited["status"], edited["version"], edited["updated_at"]) == ("edited", pm["version"] + 1, "2026-11-26T10:03:00Z")
    assert edited["sections"]["summary"] == "Checkout failed for 30 minutes."
    assert edited["sections"]["action_items"] == [{"title": "Add a canary", "priority": "high", "suggested_owner": None}]
    assert edited["sections"]["root_cause"] == ai_sections["root_cause"]
    assert client.get(url, headers=owner.headers).json() == edited

    original = client.get(f"{url}/original", headers=owner.headers)
    assert original.status_code == 200
    assert original.json()["sections"] == ai_sections

    assert_problem(client.patch(url, json={"version": edited["version"], "sections": {"severity": "SEV-9"}},
                                headers=owner.headers), 422, "validation")
    assert_problem(client.patch(url, json={"version": edited["version"], "sections": {"nonsense": "x"}},
                                headers=owner.headers), 422, "validation")
    assert_problem(client.patch(url, json={"version": edited["version"], "sections": {}}, headers=owner.headers),
                   422, "validation")
    assert_problem(client.patch(url, json={"sections": {"summary": "x"}}, headers=owner.headers), 422, "validation")

    clock.advance(minutes=2)
    r = client.post(f"{url}/publish", headers=owner.headers)
    assert r.status_code == 200
    published = r.json()
    assert_postmortem_shape(published)
    assert (published["status"], published["published_at"], published["published_by"]) == (
        "published", "2026-11-26T10:05:00Z", owner.email)
    assert published["sections"] == edited["sections"]

    revisions = client.get(f"{url}/revisions", headers=owner.headers)
    assert revisions.status_code == 200
    revs = revisions.json()
    assert [{k: r[k] for k in ("number", "status", "author", "kind", "created_at")} for r in revs] == [
        {"number": 1, "status": "draft", "author": "builtin", "kind": "ai", "created_at": "2026-11-26T10:00:00Z"},
        {"number": 2, "status": "edited", "author": member.email, "kind": "edit", "created_at": "2026-11-26T10:03:00Z"},
        {"number": 3, "status": "published", "author": owner.email, "kind": "publish", "created_at": "2026-11-26T10:05:00Z"},
    ]
    assert client.get(f"{url}/revisions/1", headers=owner.headers).json()["sections"] == ai_sections
    assert client.get(f"{url}/revisions/3", headers=owner.headers).json()["sections"] == edited["sections"]
    assert_problem(client.get(f"{url}/revisions/4", headers=owner.headers), 404, "not-found")


def test_export_markdown(client, owner):
    inc, pm = drafted(client, owner, title="Checkout outage on Black Friday", services=["checkout"])
    r = client.get(f"{API}/incidents/{inc['id']}/postmortem/export.md", headers=owner.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == "text/markdown"
    text = r.text
    assert text.startswith("# ") and "Checkout outage on Black Friday" in text.splitlines()[0]
    headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in HEADINGS] == list(HEADINGS)  # every section, in the contract's order
    assert pm["sections"]["severity"] in text


def test_export_before_any_postmortem_is_404(client, owner):
    inc = new_incident(client, owner)
    assert_problem(client.get(f"{API}/incidents/{inc['id']}/postmortem/export.md", headers=owner.headers),
                   404, "not-found")


# --- organization ------------------------------------------------------------------------------

def test_org_settings_get_and_patch(client, owner):
    r = client.get(f"{API}/org/settings", headers=owner.headers)
    assert r.status_code == 200
    assert r.json() == {"slug": owner.org_slug, "name": owner.org_slug.title(), "plan": "pro", "ai_enabled": True,
                        "public_postmortems": False, "review_mode": "off"}
    r = client.patch(f"{API}/org/settings", json={"ai_enabled": False}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["ai_enabled"] is False
    assert client.get(f"{API}/org/settings", headers=owner.headers).json()["ai_enabled"] is False
    assert_problem(client.patch(f"{API}/org/settings", json={"ai_enabled": "sometimes"}, headers=owner.headers),
                   422, "validation")
    assert_problem(client.patch(f"{API}/org/settings", json={"plan": "pro"}, headers=owner.headers), 422, "validation")
    assert client.get(f"{API}/org/settings", headers=owner.headers).json()["ai_enabled"] is False
    assert_problem(client.patch(f"{API}/org/settings", json={}, headers=owner.headers), 422, "validation")
    r = client.patch(f"{API}/org/settings", json={"public_postmortems": True}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["public_postmortems"] is True and r.json()["ai_enabled"] is False


@pytest.mark.parametrize(("plan", "limit"), [("free", 0), ("starter", 5), ("pro", 50)])
def test_usage(client, factory, plan, limit):
    who = factory.member(factory.org(plan=plan), "owner")
    r = client.get(f"{API}/org/usage", headers=who.headers)
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("plan", "month", "used", "limit")} == {
        "plan": plan, "month": "2026-11", "used": 0, "limit": limit}
    if plan != "free":
        drafted(client, who)
        assert client.get(f"{API}/org/usage", headers=who.headers).json()["used"] == 1
