"""API tokens: hashed at rest, shown once, revocable."""

from sqlalchemy import select

from blametrail import db
from blametrail.orgs.models import ApiToken


def test_token_is_stored_hashed_and_shown_once(client, factory, rt):
    m = factory.member(factory.org(), "member")
    r = client.post("/api/v1/org/tokens", json={"name": "ci"}, headers=m.headers)
    assert r.status_code == 201
    raw = r.json()["token"]
    assert raw.startswith("bt_") and len(raw) > 40
    with db.transaction(rt.factory) as s:
        stored = [t.token_hash for t in s.scalars(select(ApiToken))]
    assert raw not in stored and all(len(h) == 64 for h in stored)
    listed = client.get("/api/v1/org/tokens", headers=m.headers).json()
    assert all("token" not in t for t in listed) and any(t["name"] == "ci" for t in listed)
    assert client.get("/api/v1/org/settings", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_revoked_token_is_refused(client, factory):
    m = factory.member(factory.org(), "member")
    new = client.post("/api/v1/org/tokens", json={"name": "tmp"}, headers=m.headers).json()
    h = {"Authorization": f"Bearer {new['token']}"}
    assert client.delete(f"/api/v1/org/tokens/{new['id']}", headers=m.headers).status_code == 200
    r = client.get("/api/v1/incidents", headers=h)
    assert r.status_code == 401 and r.json()["type"] == "/problems/unauthenticated"


def test_member_cannot_revoke_someone_elses_token_but_admin_can(client, factory):
    slug = factory.org()
    a, b, admin = factory.member(slug, "member"), factory.member(slug, "member"), factory.member(slug, "admin")
    tid = client.post("/api/v1/org/tokens", json={}, headers=a.headers).json()["id"]
    assert client.delete(f"/api/v1/org/tokens/{tid}", headers=b.headers).status_code == 403
    assert client.delete(f"/api/v1/org/tokens/{tid}", headers=admin.headers).status_code == 200


def test_foreign_token_id_is_404(client, factory):
    a = factory.member(factory.org(), "owner")
    b = factory.member(factory.org(), "owner")
    tid = client.post("/api/v1/org/tokens", json={}, headers=a.headers).json()["id"]
    assert client.delete(f"/api/v1/org/tokens/{tid}", headers=b.headers).status_code == 404
