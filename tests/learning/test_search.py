"""Search across incidents, updates, postmortem sections and action items, on SQLite (FTS5) and PostgreSQL
(tsvector + GIN): ranked, highlighted, filtered, kept in step inside the writing transaction, one organization."""

from __future__ import annotations

import pytest

from blametrail import db
from blametrail.learning import index
from blametrail.learning.models import SearchDoc

API = "/api/v1/search"


def _incident(client, who, title, services=("checkout",), severity=None, description=""):
    body = {"title": title, "services": list(services), "description": description}
    if severity:
        body["severity"] = severity
    r = client.post("/api/v1/incidents", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _update(client, who, iid, text):
    r = client.post(f"/api/v1/incidents/{iid}/updates", json={"body": text}, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()


def _search(client, who, **params):
    r = client.get(API, params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_every_kind_is_found_ranked_and_highlighted(client, factory):
    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = _incident(client, owner, "Checkout pool exhausted", description="Database connections ran out.")
    _update(client, owner, iid, "Rolled back api v2.3.1; the connection pool recovered at 10:20.")
    other = _incident(client, owner, "Search latency", services=("search",))
    _update(client, owner, other, "Nothing to do with pools here; an index rebuild ran long.")
    item = client.post(f"/api/v1/incidents/{iid}/action-items", json={"title": "Alert on pool saturation",
                                                                       "priority": "high"}, headers=owner.headers)
    assert item.status_code == 201

    hits = _search(client, owner, q="pool")
    kinds = {(h["kind"], h["incident_id"]) for h in hits}
    assert {("incident", iid), ("update", iid), ("action_item", iid), ("update", other)} <= kinds
    assert all("<mark>" in h["snippet"] for h in hits), hits
    assert hits == sorted(hits, key=lambda h: -h["score"])
    top = hits[0]
    assert top["incident_id"] == iid  # the title weighs more than a passing mention
    update = next(h for h in hits if h["kind"] == "update" and h["incident_id"] == iid)
    assert update["url"].startswith(f"/incidents/{iid}#upd_") and update["title"] == "Checkout pool exhausted"
    action = next(h for h in hits if h["kind"] == "action_item")
    assert action["title"] == "Alert on pool saturation" and action["url"] == f"/action-items/{item.json()['id']}"

    # stemming and prefixes: "recovering" finds "recovered"; a half-typed word finds
    assert [h["kind"] for h in _search(client, owner, q="recovering")] == ["update"]
    assert {h["incident_id"] for h in _search(client, owner, q="exhau")} == {iid}
    # every word must appear
    assert _search(client, owner, q="pool latency") == []
    # filters
    assert {h["incident_id"] for h in _search(client, owner, q="pool", service="search")} == {other}
    assert {h["kind"] for h in _search(client, owner, q="pool", kind="action_item")} == {"action_item"}


def test_the_index_follows_edits_and_deletions_in_the_same_transaction(client, factory, rt):
    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = _incident(client, owner, "Payments timeouts")
    assert _search(client, owner, q="payments")
    from blametrail.incidents.models import Incident, TimelineEntry
    with db.transaction(rt.factory) as s:
        s.get(Incident, iid).title = "Ledger timeouts"
    assert _search(client, owner, q="payments") == []
    assert [h["kind"] for h in _search(client, owner, q="ledger")] == ["incident"]
    entry = _update(client, owner, iid, "Retries doubled the load on the ledger.")
    assert {h["kind"] for h in _search(client, owner, q="retries")} == {"update"}
    with db.transaction(rt.factory) as s:  # an update removed (a Slack message deleted) leaves the index
        s.delete(s.get(TimelineEntry, entry["id"]))
    assert _search(client, owner, q="retries") == []

    # a failed transaction leaves no trace in the index
    with pytest.raises(RuntimeError):
        with db.transaction(rt.factory) as s:
            s.get(Incident, iid).title = "Rolled back title"
            s.flush()
            raise RuntimeError("boom")
    assert _search(client, owner, q="rolled back title") == []
    with db.transaction(rt.factory) as s:
        assert s.query(SearchDoc).filter_by(kind="incident", ref_id=iid).one().title == "Ledger timeouts"


def test_postmortem_sections_are_searchable_and_rebuild_reproduces_the_index(client, factory, rt, clock):
    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = _incident(client, owner, "Queue stalled")
    _update(client, owner, iid, "Root cause: the consumer deadlocked on a poisoned message.")
    clock.advance(minutes=30)
    assert client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers).status_code == 200
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["status"] == "draft", pm
    hits = _search(client, owner, q="deadlocked", kind="postmortem")
    assert hits and {h["section"] for h in hits} >= {"root_cause"}
    assert hits[0]["url"].startswith(f"/incidents/{iid}/postmortem#")

    with db.transaction(rt.factory) as s:
        before = sorted((d.kind, d.ref_id, d.section, d.body) for d in s.query(SearchDoc))
        count = index.rebuild(s)
    with db.transaction(rt.factory) as s:
        after = sorted((d.kind, d.ref_id, d.section, d.body) for d in s.query(SearchDoc))
    assert before == after and count == len(after)
    assert _search(client, owner, q="deadlocked", kind="postmortem")  # the full-text side follows the rebuild


def test_a_search_never_returns_another_organizations_text(client, factory):
    a = factory.member(factory.org(plan="pro"), "viewer")
    b_owner = factory.member(factory.org(plan="pro"), "owner")
    a_owner = factory.member(a.org_slug, "owner")
    mine = _incident(client, a_owner, "Kafka rebalance storm")
    theirs = _incident(client, b_owner, "Kafka rebalance storm")
    _update(client, b_owner, theirs, "Kafka rebalance storm again")
    assert {h["incident_id"] for h in _search(client, a, q="kafka rebalance storm")} == {mine}
    assert {h["incident_id"] for h in _search(client, b_owner, q="kafka")} == {theirs}


def test_a_blank_search_finds_nothing_without_error(client, factory):
    viewer = factory.member(factory.org(plan="pro"), "viewer")
    for params in ({}, {"q": ""}, {"q": "   "}):
        assert _search(client, viewer, **params) == []


@pytest.mark.parametrize("params", [{"q": "x" * 201}, {"q": "a", "kind": "memo"},
                                    {"q": "a", "severity": "SEV-9"}, {"q": "a", "from": "yesterday"},
                                    {"q": "a", "from": "2026-10-05", "to": "2026-10-01"},
                                    {"q": "a", "limit": "0"}, {"q": "\"'*)(:^-"}])
def test_bad_searches_are_422_problems(client, factory, params):
    viewer = factory.member(factory.org(plan="pro"), "viewer")
    r = client.get(API, params=params, headers=viewer.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_query_syntax_is_never_interpreted(client, factory):
    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = _incident(client, owner, "NEAR OR AND NOT title")
    for q in ('NEAR(a b)', 'title:x OR', '"unbalanced', "a & b | !c", "pool:*", "AND"):
        r = client.get(API, params={"q": q}, headers=owner.headers)
        assert r.status_code == 200, (q, r.text)
    assert {h["incident_id"] for h in _search(client, owner, q="near or and not")} == {iid}


def test_the_migration_indexes_rows_that_existed_before_it(client, factory, rt, clock):
    from alembic import command
    from alembic.config import Config

    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = _incident(client, owner, "Certificate expired on the edge")
    _update(client, owner, iid, "Renewed the wildcard certificate by hand.")
    clock.advance(minutes=20)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    with db.transaction(rt.factory) as s:
        before = sorted((d.kind, d.ref_id, d.section, d.body) for d in s.query(SearchDoc))
    cfg = Config()
    cfg.set_main_option("script_location", str(db.Path(db.__file__).parent / "migrations"))
    cfg.attributes["engine"] = rt.engine
    command.downgrade(cfg, "0010")
    command.upgrade(cfg, "head")
    with db.transaction(rt.factory) as s:
        after = sorted((d.kind, d.ref_id, d.section, d.body) for d in s.query(SearchDoc))
    assert after == before and {k for k, *_ in after} >= {"incident", "update", "postmortem"}
    assert {h["kind"] for h in _search(client, owner, q="wildcard")} >= {"update"}


def test_ranking_reads_the_most_recent_matches_of_this_organization_only(client, factory, monkeypatch):
    from blametrail.learning import search as engine

    monkeypatch.setattr(engine, "RANK_POOL", 2)
    small = factory.member(factory.org(plan="pro"), "owner")
    big = factory.member(factory.org(plan="pro"), "owner")
    mine = _incident(client, small, "Disk pressure on ledger")  # older than all of the big org's
    theirs = [_incident(client, big, f"Disk pressure {n}") for n in range(5)]
    assert {h["incident_id"] for h in _search(client, small, q="disk pressure")} == {mine}
    assert {h["incident_id"] for h in _search(client, big, q="disk pressure")} == set(theirs[-2:])
