"""The action items API: shapes, filters, 422s, foreign ids, roles, from-draft."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail import db
from blametrail.postmortems.models import Postmortem

API = "/api/v1"
KEYS = {"id", "incident_id", "title", "priority", "owner", "due_date", "status", "external", "created_at",
        "updated_at"}


@pytest.fixture
def world(client, factory):
    team = factory.team()
    other = factory.member(factory.org(), "owner")

    def incident(who, services=("checkout",)):
        r = client.post(f"{API}/incidents", json={"title": "Down", "services": list(services)}, headers=who.headers)
        assert r.status_code == 201
        return r.json()["id"]

    return {**team, "other": other, "inc": incident(team["owner"]), "foreign_inc": incident(other)}


def test_create_read_list_patch(client, world, clock):
    m = world["member"]
    today = clock.now().date()
    r = client.post(f"{API}/incidents/{world['inc']}/action-items", headers=m.headers,
                    json={"title": "Add alert", "priority": "high", "owner": "sre", "due_date": str(today - timedelta(days=1))})
    assert r.status_code == 201, r.text
    item = r.json()
    assert KEYS <= set(item) and item["status"] == "open" and item["overdue"] is True and item["external"] is None
    assert (item["incident_id"], item["service"], item["duplicate_of"]) == (world["inc"], "checkout", None)
    assert client.get(f"{API}/action-items/{item['id']}", headers=world["viewer"].headers).json() == item
    listed = client.get(f"{API}/action-items", params={"overdue": "true", "owner": "SRE", "status": "open",
                                                       "incident_id": world["inc"]}, headers=m.headers).json()
    assert [i["id"] for i in listed["items"]] == [item["id"]]
    assert client.get(f"{API}/action-items", params={"overdue": "false"}, headers=m.headers).json() == {"items": []}
    r = client.patch(f"{API}/action-items/{item['id']}", headers=m.headers, json={"status": "done", "due_date": None})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["due_date"], r.json()["overdue"]) == ("done", None, False)
    assert r.json()["completed_at"] is not None
    r = client.patch(f"{API}/action-items/{item['id']}", headers=m.headers, json={"status": "open"})
    assert r.json()["completed_at"] is None


@pytest.mark.parametrize("body", [
    {"status": "closed"}, {"external": {"key": "X"}}, {"title": ""}, {"title": None}, {"priority": "urgent"},
    {"owner": "x" * 321}, {"due_date": "tomorrow"}, {"id": 5},
])
def test_patch_refuses_bad_input(client, world, body):
    m = world["member"]
    item = client.post(f"{API}/incidents/{world['inc']}/action-items", headers=m.headers, json={"title": "t"}).json()
    r = client.patch(f"{API}/action-items/{item['id']}", headers=m.headers, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("body", [{}, {"title": "   "}, {"title": "x", "priority": "p0"}, {"title": "x", "extra": 1}])
def test_create_refuses_bad_input(client, world, body):
    r = client.post(f"{API}/incidents/{world['inc']}/action-items", headers=world["member"].headers, json=body)
    assert r.status_code == 422


@pytest.mark.parametrize("query", [{"status": "closed"}, {"overdue": "maybe"}, {"incident_id": "0"}])
def test_list_refuses_bad_filters(client, world, query):
    assert client.get(f"{API}/action-items", params=query, headers=world["member"].headers).status_code == 422


def test_foreign_ids_are_404(client, world):
    other = world["other"]
    mine = client.post(f"{API}/incidents/{world['inc']}/action-items", headers=world["member"].headers,
                       json={"title": "mine"}).json()["id"]
    assert client.get(f"{API}/action-items/{mine}", headers=other.headers).status_code == 404
    assert client.patch(f"{API}/action-items/{mine}", headers=other.headers, json={"status": "done"}).status_code == 404
    assert client.post(f"{API}/incidents/{world['inc']}/action-items", headers=other.headers,
                       json={"title": "x"}).status_code == 404
    assert client.post(f"{API}/incidents/{world['inc']}/action-items/from-draft",
                       headers=other.headers).status_code == 404
    assert client.get(f"{API}/action-items", headers=other.headers).json() == {"items": []}
    assert client.get(f"{API}/action-items/987654", headers=world["member"].headers).status_code == 404


def test_viewer_cannot_write(client, world):
    v = world["viewer"]
    item = client.post(f"{API}/incidents/{world['inc']}/action-items", headers=world["member"].headers,
                       json={"title": "t"}).json()
    assert client.post(f"{API}/incidents/{world['inc']}/action-items", headers=v.headers,
                       json={"title": "x"}).status_code == 403
    assert client.patch(f"{API}/action-items/{item['id']}", headers=v.headers, json={"status": "done"}).status_code == 403
    assert client.post(f"{API}/incidents/{world['inc']}/action-items/from-draft", headers=v.headers).status_code == 403
    assert client.get(f"{API}/action-items/{item['id']}", headers=v.headers).json()["status"] == "open"


def test_from_draft_is_idempotent_and_owner_is_a_member_when_it_is_their_email(client, world, rt, clock):
    admin_email = world["admin"].email
    with db.transaction(rt.factory) as s:
        s.add(Postmortem(org_id=world["owner"].actor.org_id, incident_id=world["inc"], status="draft",
                         sections={"action_items": [
                             {"title": "Alert on errors", "priority": "high", "suggested_owner": "payments"},
                             {"title": "Runbook", "priority": "low", "suggested_owner": admin_email}]},
                         generation_requested_at=clock.now(), created_at=clock.now(), updated_at=clock.now()))
    url = f"{API}/incidents/{world['inc']}/action-items/from-draft"
    first = client.post(url, headers=world["member"].headers)
    assert first.status_code == 200, first.text
    assert [(i["title"], i["owner"], i["source"]) for i in first.json()["items"]] == [
        ("Alert on errors", "payments", "draft"), ("Runbook", admin_email, "draft")]
    assert client.post(url, headers=world["member"].headers).json() == first.json()
    assert len(client.get(f"{API}/action-items", headers=world["member"].headers).json()["items"]) == 2
