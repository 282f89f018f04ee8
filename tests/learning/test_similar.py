"""Similar incidents through the API and the incident page: scored from services, cause, suspect files, log patterns,
alerts and words; stored fingerprints from drafts; bounded to one organization."""

from __future__ import annotations

from blametrail import db
from blametrail.analysis import similarity
from blametrail.incidents.models import Incident
from blametrail.learning import similar
from blametrail.learning.models import IncidentFingerprint
from tests.web.test_pages import browser, soup, team, text  # noqa: F401 — fixtures


def _incident(client, who, title, services):
    r = client.post("/api/v1/incidents", json={"title": title, "services": list(services)}, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _remember(rt, iid, **fields):
    with db.transaction(rt.factory) as s:
        incident = s.get(Incident, iid)
        base = similarity.basic(title=incident.title, services=incident.service_names)
        similar.remember(s, incident, similarity.Fingerprint(**{**base.__dict__, **fields}), rt.clock.now())


def test_the_most_alike_come_first_with_their_reasons(client, factory, rt):
    owner = factory.member(factory.org(plan="pro"), "owner")
    first = _incident(client, owner, "Checkout pool exhausted", ["checkout"])
    unrelated = _incident(client, owner, "Search index lagging", ["search"])
    same_cause_elsewhere = _incident(client, owner, "Payments database saturated", ["payments"])
    same_service_only = _incident(client, owner, "Checkout slow images", ["checkout"])
    subject = _incident(client, owner, "Checkout pool exhausted again", ["checkout"])
    for iid in (first, subject):
        _remember(rt, iid, category="database", files=frozenset({"checkout/db/pool.py"}))
    _remember(rt, same_cause_elsewhere, category="database")

    r = client.get(f"/api/v1/incidents/{subject}/similar", headers=owner.headers)
    assert r.status_code == 200, r.text
    found = r.json()
    assert [f["incident_id"] for f in found][:3] == [first, same_service_only, same_cause_elsewhere]
    assert unrelated not in [f["incident_id"] for f in found]
    top = found[0]
    assert set(top) >= {"incident_id", "title", "score", "reasons"} and 0 < top["score"] <= 1
    assert top["reasons"][:3] == ["same service: checkout", "same cause: " + similarity.category_label("database"),
                                  "same suspect file: checkout/db/pool.py"]
    assert found == sorted(found, key=lambda f: -f["score"])


def test_other_organizations_never_appear_and_their_ids_are_404(client, factory, rt):
    a = factory.member(factory.org(plan="pro"), "owner")
    b = factory.member(factory.org(plan="pro"), "owner")
    mine = _incident(client, a, "Checkout pool exhausted", ["checkout"])
    theirs = _incident(client, b, "Checkout pool exhausted", ["checkout"])
    _incident(client, b, "Checkout pool exhausted twice", ["checkout"])
    assert client.get(f"/api/v1/incidents/{mine}/similar", headers=a.headers).json() == []
    assert client.get(f"/api/v1/incidents/{theirs}/similar", headers=a.headers).status_code == 404


def test_a_draft_stores_the_fingerprint_and_names_the_resemblance(client, factory, rt, clock):
    owner = factory.member(factory.org(plan="pro"), "owner")
    earlier = _incident(client, owner, "Checkout pool exhausted", ["checkout"])
    clock.advance(minutes=30)
    client.post(f"/api/v1/incidents/{earlier}/resolve", headers=owner.headers)
    with db.transaction(rt.factory) as s:
        stored = s.get(IncidentFingerprint, earlier)
        assert stored is not None and stored.data["services"] == ["checkout"]
        stored.data = {**stored.data, "alerts": ["CheckoutPoolSaturated"]}
    clock.advance(days=3)
    later = _incident(client, owner, "Checkout pool exhausted again", ["checkout"])
    r = client.post("/api/v1/webhooks", json={"kind": "alertmanager", "name": "am"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    hook = r.json()
    body = {"version": "4", "status": "firing", "receiver": "x", "groupKey": "g", "alerts": [{
        "status": "firing", "labels": {"alertname": "CheckoutPoolSaturated", "service": "checkout"},
        "annotations": {"summary": "pool saturated"}, "startsAt": clock.now().isoformat().replace("+00:00", "Z"),
        "fingerprint": "abc"}]}
    delivered = client.post("/" + hook["url"].split("/", 3)[3], json=body,
                            headers={"Authorization": f"Bearer {hook['secret']}"})
    assert delivered.status_code in (200, 202), delivered.text
    timeline = client.get(f"/api/v1/incidents/{later}/timeline", headers=owner.headers)
    assert "CheckoutPoolSaturated" in timeline.text, delivered.text
    clock.advance(minutes=20)
    client.post(f"/api/v1/incidents/{later}/resolve", headers=owner.headers)
    pm = client.get(f"/api/v1/incidents/{later}/postmortem", headers=owner.headers).json()
    factors = pm["sections"]["contributing_factors"]
    assert any(f.startswith(f"This resembles #{earlier} of ") and "same alert: CheckoutPoolSaturated" in f
               and f"inc_{earlier}" in f for f in factors), factors


def test_the_incident_page_lists_similar_incidents(browser, team, client, rt):
    t = team()
    first = _incident(client, t["owner"], "Checkout pool exhausted", ["checkout"])
    subject = _incident(client, t["owner"], "Checkout pool exhausted again", ["checkout"])
    page = soup(browser(t["viewer"]).get(f"/incidents/{subject}"))
    items = page.select("#similar-panel li.similar-item")
    assert [int(li["data-incident"]) for li in items] == [first]
    assert "same service: checkout" in text(items[0].select_one(".similar-reasons"))
    alone = soup(browser(t["viewer"]).get(f"/incidents/{_incident(client, t['owner'], 'Lone', ['solo'])}"))
    assert alone.select_one("#similar-none") is not None


def test_the_incident_page_reuses_its_similar_panel_for_a_while(browser, team, client, monkeypatch):
    from blametrail.web.pages import incidents as incident_pages

    t = team()
    first = _incident(client, t["owner"], "Checkout pool exhausted", ["checkout"])
    subject = _incident(client, t["owner"], "Checkout pool exhausted again", ["checkout"])
    calls: list[int] = []
    real = incident_pages.similar_incidents.similar
    monkeypatch.setattr(incident_pages.similar_incidents, "similar",
                        lambda session, incident, **kw: calls.append(incident.id) or real(session, incident, **kw))
    viewer = browser(t["viewer"])
    for _ in range(3):
        items = soup(viewer.get(f"/incidents/{subject}")).select("#similar-panel li.similar-item")
        assert [int(li["data-incident"]) for li in items] == [first]
    assert calls == [subject]  # computed once, reused by the next views
    monkeypatch.setattr(incident_pages, "SIMILAR_TTL_SECONDS", 0.0)
    viewer.get(f"/incidents/{subject}")
    assert calls == [subject, subject]  # and computed again once it is older than the TTL


def test_a_new_draft_points_a_repeated_action_item_at_the_open_one(client, factory, rt, clock, browser, team):
    t = team()
    owner = t["owner"]
    earlier = _incident(client, owner, "Checkout pool exhausted", ["checkout"])
    tracked = client.post(f"/api/v1/incidents/{earlier}/action-items", headers=owner.headers,
                          json={"title": "Add an alert on connection pool saturation", "priority": "high"}).json()
    later = _incident(client, owner, "Checkout pool exhausted again", ["checkout"])
    with db.transaction(rt.factory) as s:  # the draft proposes the same follow-up (as the writer would)
        from blametrail.jobs import generation

        sections = {"action_items": [{"title": "Add alert on connection-pool saturation", "priority": "high",
                                      "tracked_as": 999},
                                     {"title": "Raise the pool size", "priority": "medium"}]}
        marked = generation._mark_tracked(s, later, sections)["action_items"]
    assert marked[0]["tracked_as"] == tracked["id"] and "tracked_as" not in marked[1]  # never the writer's own
    client.patch(f"/api/v1/action-items/{tracked['id']}", json={"status": "done"}, headers=owner.headers)
    with db.transaction(rt.factory) as s:
        again = generation._mark_tracked(s, later, sections)["action_items"]
    assert "tracked_as" not in again[0]  # a done item is not proposed

    client.patch(f"/api/v1/action-items/{tracked['id']}", json={"status": "open"}, headers=owner.headers)
    clock.advance(minutes=20)
    client.post(f"/api/v1/incidents/{later}/resolve", headers=owner.headers)
    url = f"/api/v1/incidents/{later}/postmortem"
    pm = client.get(url, headers=owner.headers).json()
    items = [{"title": "Add alert on connection-pool saturation", "priority": "high", "tracked_as": tracked["id"]}]
    r = client.patch(url, json={"version": pm["version"], "sections": {"action_items": items}}, headers=owner.headers)
    assert r.status_code == 200, r.text
    page = soup(browser(t["viewer"]).get(f"/incidents/{later}/postmortem"))
    note = page.select_one(".tracked-as")
    assert note is not None and f"action item #{tracked['id']}" in text(note)
    assert note.select_one("a")["href"] == f"/action-items/{tracked['id']}"
    md = client.get(f"/api/v1/incidents/{later}/postmortem/export.md", headers=owner.headers).text
    assert f"(already tracked as action item #{tracked['id']})" in md
