"""Action items service: materialize (idempotent, concurrent, repeats), filters, overdue, org isolation."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.actions import service as actions
from blametrail.actions import trackers
from blametrail.actions.models import ActionItem
from blametrail.actions.schemas import ActionItemCreate, ActionItemUpdate
from blametrail.errors import Forbidden, NotFound
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate

SECTIONS = {"action_items": [
    {"title": "Add an alert on checkout error rate", "priority": "high", "suggested_owner": "payments-team",
     "kind": "detect", "evidence": ["deploy:3"]},
    {"title": "Roll back  bad deploys automatically!", "priority": "bogus", "suggested_owner": None},
    {"title": "add an ALERT on checkout error-rate", "priority": "low"},  # same normalized title: made once
    {"title": "   "}, "not a dict",
]}


@pytest.fixture
def team(factory):
    return factory.team()


def _incident(rt, actor, services=("checkout",), title="Checkout down"):
    with db.transaction(rt.factory) as s:
        return incidents.create(session=s, actor=actor, data=IncidentCreate(title=title, services=list(services)),
                                now=rt.clock.now()).id


def _materialize(rt, org_id, incident_id, sections=SECTIONS):
    with db.transaction(rt.factory) as s:
        return [(i.id, i.title, i.duplicate_of_id) for i in actions.materialize(
            session=s, org_id=org_id, incident_id=incident_id, sections=sections, actor_label="publisher",
            now=rt.clock.now())]


def _count(rt, **where):
    with db.transaction(rt.factory) as s:
        q = select(func.count()).select_from(ActionItem)
        for k, v in where.items():
            q = q.where(getattr(ActionItem, k) == v)
        return s.scalar(q)


def test_materialize_makes_each_draft_item_once(rt, team):
    owner = team["owner"].actor
    inc = _incident(rt, owner)
    first = _materialize(rt, owner.org_id, inc)
    assert [t for _, t, _ in first] == ["Add an alert on checkout error rate", "Roll back bad deploys automatically!"]
    again = _materialize(rt, owner.org_id, inc)
    assert [i for i, _, _ in again] == [i for i, _, _ in first]
    assert _count(rt, incident_id=inc) == 2
    with db.transaction(rt.factory) as s:
        a, b = (s.get(ActionItem, i) for i, _, _ in first)
        assert (a.priority, a.owner, a.owner_user_id, a.kind, a.evidence, a.service, a.source, a.created_by) == (
            "high", "payments-team", None, "detect", ["deploy:3"], "checkout", "draft", "publisher")
        assert (b.priority, b.owner, b.kind, b.status) == ("medium", None, None, "open")
        assert a.source_key == actions.source_key("ADD an alert on checkout, error rate") and len(a.source_key) == 64


def test_materialize_adds_only_new_items_of_a_changed_draft(rt, team):
    owner = team["owner"].actor
    inc = _incident(rt, owner)
    _materialize(rt, owner.org_id, inc)
    more = {"action_items": [*SECTIONS["action_items"], {"title": "Write a runbook", "priority": "low"}]}
    assert len(_materialize(rt, owner.org_id, inc, more)) == 3
    assert _count(rt, incident_id=inc) == 3
    assert _materialize(rt, owner.org_id, inc, {"action_items": []}) == []
    assert _materialize(rt, owner.org_id, inc, None) == []


def test_materialize_recovers_from_a_row_made_meanwhile(rt, team):
    """The insert hits the unique constraint (as when a concurrent publish won): the savepoint keeps the rest."""
    owner = team["owner"].actor
    inc = _incident(rt, owner)
    with db.transaction(rt.factory) as s:
        s.add(ActionItem(org_id=owner.org_id, incident_id=inc, title="made elsewhere", source="draft",
                         source_key=actions.source_key("Write a runbook"), evidence=[], created_at=rt.clock.now(),
                         updated_at=rt.clock.now()))
    real_scalar = None

    with db.transaction(rt.factory) as s:
        real_scalar = s.scalar
        calls = {"n": 0}

        def blind_first_lookup(stmt, *a, **kw):  # the read misses the row, as if it were not committed yet
            if "action_item" in str(stmt) and "source_key" in str(stmt) and calls["n"] == 0:
                calls["n"] += 1
                return None
            return real_scalar(stmt, *a, **kw)

        s.scalar = blind_first_lookup
        items = actions.materialize(session=s, org_id=owner.org_id, incident_id=inc, now=rt.clock.now(),
                                    sections={"action_items": [{"title": "write a RUNBOOK"}, {"title": "Other"}]},
                                    actor_label="x")
        assert [i.title for i in items] == ["made elsewhere", "Other"]
    assert _count(rt, incident_id=inc) == 2


def test_materialize_concurrently_on_postgresql(rt, team, _schema):
    if _schema["kind"] != "postgresql":
        pytest.skip("needs two real concurrent transactions (PostgreSQL)")
    owner = team["owner"].actor
    inc = _incident(rt, owner)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run():
        try:
            with db.transaction(rt.factory) as s:
                s.execute(select(1))
                barrier.wait(timeout=10)
                actions.materialize(session=s, org_id=owner.org_id, incident_id=inc, sections=SECTIONS,
                                    actor_label="t", now=rt.clock.now())
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert _count(rt, incident_id=inc) == 2


def test_repeat_of_an_open_item_of_another_incident_with_the_same_service(rt, team):
    owner = team["owner"].actor
    earlier = _incident(rt, owner, title="Earlier")
    (old_id, _, _), _ = _materialize(rt, owner.org_id, earlier)
    other_service = _incident(rt, owner, services=("search",))
    later = _incident(rt, owner, title="Later")
    sections = {"action_items": [{"title": "Add alerts on the checkout error rate", "priority": "high"},
                                 {"title": "Fix the flaky payment retry", "priority": "low"}]}
    made = _materialize(rt, owner.org_id, later, sections)
    assert [d for _, _, d in made] == [old_id, None]
    assert [d for _, _, d in _materialize(rt, owner.org_id, other_service, sections)] == [None, None]
    # a done item is not repeated
    with db.transaction(rt.factory) as s:
        s.get(ActionItem, old_id).status = "done"
    again = _incident(rt, owner, title="Again")
    assert [d for _, _, d in _materialize(rt, owner.org_id, again, sections)] == [made[0][0], made[1][0]]


def test_similarity_measure():
    assert actions.similarity("Add an alert on checkout error rate", "Add alerts on the checkout error rate") == 1.0
    assert actions.similarity("Add alert for disk usage", "Add alert for checkout latency") < 0.6
    assert actions.similarity("", "x") == 0.0


def test_create_update_and_completed_at(rt, team, clock):
    member, viewer = team["member"], team["viewer"]
    inc = _incident(rt, team["owner"].actor)
    seen = []
    listener = lambda s, item, event, changes, now: seen.append((item.id, event, changes))  # noqa: E731
    trackers.listeners.append(listener)
    try:
        with db.transaction(rt.factory) as s:
            item = actions.create(session=s, actor=member.actor, incident_id=inc, now=clock.now(),
                                  data=ActionItemCreate(title=" Fix  it ", owner=team["admin"].email.upper()))
            assert (item.title, item.service, item.source, item.status) == ("Fix it", "checkout", "manual", "open")
            assert item.owner_user_id == team["admin"].actor.user_id
            item_id = item.id
        with db.transaction(rt.factory) as s:
            item = actions.get_or_404(session=s, org_id=member.actor.org_id, item_id=item_id)
            actions.update(session=s, actor=member.actor, item=item, now=clock.now(),
                           data=ActionItemUpdate(status="done", owner="sre-team"))
            assert item.completed_at == clock.now() and item.owner_user_id is None
            actions.update(session=s, actor=member.actor, item=item, now=clock.now(),
                           data=ActionItemUpdate(status="in_progress"))
            assert item.completed_at is None
            with pytest.raises(Forbidden):
                actions.update(session=s, actor=viewer.actor, item=item, now=clock.now(),
                               data=ActionItemUpdate(status="done"))
    finally:
        trackers.listeners.remove(listener)  # why: the app's own listeners (tracker sync) stay registered
    assert [e for _, e, _ in seen] == ["created", "updated", "updated"]
    assert seen[1][2]["status"] == ["open", "done"]


def test_filters_overdue_and_org_isolation(rt, team, clock, factory):
    member = team["member"].actor
    inc1, inc2 = _incident(rt, member), _incident(rt, member, title="Two")
    today = clock.now().date()
    with db.transaction(rt.factory) as s:
        def add(inc, title, **kw):
            return actions.create(session=s, actor=member, incident_id=inc, now=clock.now(),
                                  data=ActionItemCreate(title=title, **kw)).id
        late = add(inc1, "late", due_date=today - timedelta(days=1), owner="Team-A")
        due_today = add(inc1, "today", due_date=today, owner="team-a")
        late_done = add(inc2, "late done", due_date=today - timedelta(days=3))
        nodue = add(inc2, "no due")
        actions.update(session=s, actor=member, item=s.get(ActionItem, late_done), now=clock.now(),
                       data=ActionItemUpdate(status="done"))
    other = factory.member(factory.org(), "owner").actor
    other_inc = _incident(rt, other)
    with db.transaction(rt.factory) as s:
        actions.create(session=s, actor=other, incident_id=other_inc, now=clock.now(),
                       data=ActionItemCreate(title="foreign", due_date=today - timedelta(days=9)))

    def ids(**kw):
        with db.transaction(rt.factory) as s:
            return [i.id for i in actions.list_items(session=s, org_id=member.org_id, today=today, **kw)]

    assert ids() == [late, nodue, late_done, due_today]  # overdue first, then newest
    assert sorted(ids(status="open")) == sorted([late, due_today, nodue])
    assert ids(status="done") == [late_done]
    assert sorted(ids(owner="TEAM-A")) == sorted([late, due_today])
    assert sorted(ids(incident_id=inc2)) == sorted([late_done, nodue])
    assert ids(overdue=True) == [late]
    assert sorted(ids(overdue="false")) == sorted([due_today, late_done, nodue])
    with pytest.raises(Exception, match="status must be"):
        ids(status="closed")
    with db.transaction(rt.factory) as s:
        with pytest.raises(NotFound):
            actions.get_or_404(session=s, org_id=other.org_id, item_id=late)
        with pytest.raises(NotFound):
            actions.create(session=s, actor=other, incident_id=inc1, now=clock.now(),
                           data=ActionItemCreate(title="x"))
        with pytest.raises(NotFound):
            actions.materialize(session=s, org_id=other.org_id, incident_id=inc1, sections=SECTIONS,
                                actor_label="x", now=clock.now())


def test_publishing_makes_the_drafts_action_items_tracked_once(client, rt, clock, factory):
    from tests.web.test_pages import drafted_incident

    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = drafted_incident(rt, clock, owner)
    url = f"/api/v1/incidents/{iid}/postmortem"
    pm = client.get(url, headers=owner.headers).json()
    items = [{"title": "Alert on checkout error rate", "priority": "high", "suggested_owner": "Team Checkout"}]
    assert client.patch(url, headers=owner.headers, json={"version": pm["version"],
                                                          "sections": {"action_items": items}}).status_code == 200
    assert client.post(f"{url}/publish", headers=owner.headers).status_code == 200
    listed = client.get(f"/api/v1/action-items?incident_id={iid}", headers=owner.headers).json()["items"]
    assert [(i["title"], i["owner"], i["status"]) for i in listed] == [
        ("Alert on checkout error rate", "Team Checkout", "open")]
    pm = client.get(url, headers=owner.headers).json()
    items.append({"title": "Add a canary stage", "priority": "medium"})
    client.patch(url, headers=owner.headers, json={"version": pm["version"], "sections": {"action_items": items}})
    assert client.post(f"{url}/publish", headers=owner.headers).status_code == 200  # a republish adds only the new one
    listed = client.get(f"/api/v1/action-items?incident_id={iid}", headers=owner.headers).json()["items"]
    assert sorted(i["title"] for i in listed) == ["Add a canary stage", "Alert on checkout error rate"]
