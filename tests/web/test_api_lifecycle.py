"""The postmortem lifecycle through the API: rate limit, edits kept, conflicts, revisions, publish freeze, states."""

from __future__ import annotations

import pytest

from blametrail.engines.builtin import BuiltinEngine
from blametrail.errors import UpstreamError

API = "/api/v1"


def problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    body = r.json()
    assert (body["type"], body["status"]) == (f"/problems/{slug}", status)
    assert body["detail"]
    return body


@pytest.fixture
def team(factory):
    return factory.team(plan="pro")


@pytest.fixture
def owner(team):
    return team["owner"]


def incident(client, who, **fields) -> int:
    r = client.post(f"{API}/incidents", headers=who.headers, json={
        "title": "Checkout 500s", "services": ["checkout"], "started_at": "2026-11-26T09:30:00Z", **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def drafted(client, who) -> tuple[str, dict]:
    """Resolve an incident; return its postmortem URL and the first (automatic) draft."""
    iid = incident(client, who)
    client.post(f"{API}/incidents/{iid}/updates", json={"body": "Error rate 40% on checkout", "at": "2026-11-26T09:35:00Z"},
                headers=who.headers)
    assert client.post(f"{API}/incidents/{iid}/resolve", headers=who.headers).status_code == 200
    url = f"{API}/incidents/{iid}/postmortem"
    pm = client.get(url, headers=who.headers).json()
    assert (pm["status"], pm["version"]) == ("draft", 2)
    return url, pm


def get(client, who, url) -> dict:
    r = client.get(url, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def edit(client, who, url, version: int, **sections) -> dict:
    r = client.patch(url, json={"version": version, "sections": sections}, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def regenerate(client, who, url, **body):
    return client.post(f"{url}/regenerate", json=body, headers=who.headers)


def test_regenerate_is_rate_limited_from_the_start_of_the_first_automatic_generation(client, owner, clock):
    url, pm = drafted(client, owner)

    r = regenerate(client, owner, url)
    body = problem(r, 429, "rate-limited")
    assert r.headers["retry-after"] == "60"
    assert "60" in body["detail"]

    clock.advance(seconds=59)
    r = regenerate(client, owner, url)
    problem(r, 429, "rate-limited")
    assert r.headers["retry-after"] == "1"
    assert get(client, owner, url) == pm  # refusals changed nothing
    assert len(get(client, owner, f"{url}/revisions")) == 1

    clock.advance(seconds=1)
    r = regenerate(client, owner, url)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    after = get(client, owner, url)
    assert (after["status"], after["version"], after["generated_at"]) == ("draft", 3, "2026-11-26T10:01:00Z")

    r = regenerate(client, owner, url)  # counted again from this generation's start
    problem(r, 429, "rate-limited")
    assert r.headers["retry-after"] == "60"
    clock.advance(seconds=30)
    assert regenerate(client, owner, url).headers["retry-after"] == "30"


def test_regenerate_without_a_body_is_accepted(client, owner, clock):
    url, _ = drafted(client, owner)
    clock.advance(seconds=60)
    assert client.post(f"{url}/regenerate", headers=owner.headers).status_code == 202


def test_edited_sections_survive_regenerate_unless_overwritten(client, team, clock):
    owner, member = team["owner"], team["member"]
    url, pm = drafted(client, owner)
    ai = pm["sections"]
    edited = edit(client, member, url, pm["version"], summary="Checkout failed: the pool was exhausted.",
                  root_cause="A connection pool limit of 10.")
    assert edited["status"] == "edited"
    assert sorted(edited["edited_sections"]) == ["root_cause", "summary"]

    clock.advance(seconds=60)
    assert regenerate(client, owner, url).status_code == 202
    kept = get(client, owner, url)
    assert kept["status"] == "edited"
    assert kept["sections"]["summary"] == "Checkout failed: the pool was exhausted."
    assert kept["sections"]["root_cause"] == "A connection pool limit of 10."
    assert {k: v for k, v in kept["sections"].items() if k not in ("summary", "root_cause")} == {
        k: v for k, v in ai.items() if k not in ("summary", "root_cause")}
    assert sorted(kept["edited_sections"]) == ["root_cause", "summary"]
    assert get(client, owner, f"{url}/original")["sections"]["summary"] == ai["summary"]

    clock.advance(seconds=60)
    assert regenerate(client, owner, url, overwrite_edited=True).status_code == 202
    overwritten = get(client, owner, url)
    assert overwritten["status"] == "draft"
    assert overwritten["sections"] == ai
    assert overwritten["edited_sections"] == []
    revisions = get(client, owner, f"{url}/revisions")
    assert [r["kind"] for r in revisions] == ["ai", "edit", "ai", "ai"]
    assert get(client, owner, f"{url}/revisions/3")["sections"]["summary"] == "Checkout failed: the pool was exhausted."


def test_edit_with_a_stale_version_is_a_version_conflict(client, team, clock):
    owner, member = team["owner"], team["member"]
    url, pm = drafted(client, owner)
    first = edit(client, owner, url, pm["version"], summary="First save")
    body = problem(client.patch(url, json={"version": pm["version"], "sections": {"summary": "Second save"}},
                                headers=member.headers), 409, "version-conflict")
    assert str(first["version"]) in body["detail"]
    assert get(client, owner, url) == first
    assert len(get(client, owner, f"{url}/revisions")) == 2

    clock.advance(seconds=60)
    assert regenerate(client, owner, url).status_code == 202  # a new draft is a new version too
    # (a save based on an older version merges per section: tests/postmortems/test_merge.py)
    problem(client.patch(url, json={"version": 99, "sections": {"summary": "x"}}, headers=member.headers),
            409, "version-conflict")
    assert get(client, owner, url)["sections"]["summary"] == "First save"


def test_every_change_adds_a_revision_and_nothing_is_lost(client, team, clock):
    owner, admin, member = team["owner"], team["admin"], team["member"]
    url, pm = drafted(client, owner)
    states = [pm]
    clock.advance(seconds=10)
    states.append(edit(client, member, url, states[-1]["version"], what_went_well=["Quick rollback"]))
    clock.advance(seconds=60)
    client.post(f"{url.rsplit('/', 1)[0]}/updates", json={"body": "Cause: pool exhausted by deploy v2",
                                                          "at": "2026-11-26T09:50:00Z"}, headers=member.headers)
    assert regenerate(client, admin, url).status_code == 202
    states.append(get(client, owner, url))
    clock.advance(seconds=10)
    states.append(edit(client, admin, url, states[-1]["version"], severity="SEV-1"))
    clock.advance(seconds=10)
    states.append(client.post(f"{url}/publish", headers=admin.headers).json())
    clock.advance(seconds=10)
    states.append(edit(client, member, url, states[-1]["version"], action_items=[
        {"title": "Alert on pool saturation", "priority": "high", "suggested_owner": "platform"}]))

    revisions = get(client, owner, f"{url}/revisions")
    assert [(r["number"], r["kind"], r["status"], r["author"]) for r in revisions] == [
        (1, "ai", "draft", "builtin"),
        (2, "edit", "edited", member.email),
        (3, "ai", "edited", "builtin"),
        (4, "edit", "edited", admin.email),
        (5, "publish", "published", admin.email),
        (6, "edit", "published", member.email),
    ]
    assert [r["created_at"] for r in revisions] == [
        "2026-11-26T10:00:00Z", "2026-11-26T10:00:10Z", "2026-11-26T10:01:10Z", "2026-11-26T10:01:20Z",
        "2026-11-26T10:01:30Z", "2026-11-26T10:01:40Z"]
    for n, state in enumerate(states, start=1):
        assert get(client, owner, f"{url}/revisions/{n}")["sections"] == state["sections"], n
    assert states[2]["sections"]["what_went_well"] == ["Quick rollback"]  # kept across the regeneration
    assert states[2]["sections"]["timeline"] != states[0]["sections"]["timeline"]  # the new update was drafted in
    versions = [s["version"] for s in states]
    assert versions == sorted(versions) and len(set(versions)) == len(versions) - 1  # publish keeps the version


def test_original_is_the_last_ai_draft(client, team, clock):
    owner, member = team["owner"], team["member"]
    url, pm = drafted(client, owner)
    first_ai = pm["sections"]
    after = edit(client, member, url, pm["version"], summary="Human summary", timeline=[])
    original = get(client, owner, f"{url}/original")
    assert original["sections"] == first_ai
    assert original["engine"] == "builtin"
    assert after["sections"] != first_ai

    client.post(f"{url.rsplit('/', 1)[0]}/updates", json={"body": "Rolled back deploy v2",
                                                          "at": "2026-11-26T09:55:00Z"}, headers=member.headers)
    clock.advance(seconds=60)
    assert regenerate(client, owner, url).status_code == 202
    second = get(client, owner, f"{url}/original")["sections"]
    current = get(client, owner, url)["sections"]
    assert second != first_ai
    assert any("Rolled back" in t["description"] for t in second["timeline"])
    assert current["summary"] == "Human summary" and current["timeline"] == []
    assert second["summary"] != "Human summary"
    assert {k: v for k, v in second.items() if k not in ("summary", "timeline")} == {
        k: v for k, v in current.items() if k not in ("summary", "timeline")}
    edit(client, member, url, get(client, owner, url)["version"], root_cause="Edited after the second draft")
    assert get(client, owner, f"{url}/original")["sections"] == second


def test_publish_freezes_a_revision_and_later_edits_stay_published(client, team, clock):
    owner, member = team["owner"], team["member"]
    url, pm = drafted(client, owner)
    edited = edit(client, member, url, pm["version"], summary="Reviewed summary")
    clock.advance(minutes=1)
    published = client.post(f"{url}/publish", headers=owner.headers)
    assert published.status_code == 200
    published = published.json()
    assert (published["status"], published["published_at"], published["published_by"]) == (
        "published", "2026-11-26T10:01:00Z", owner.email)
    frozen = get(client, owner, f"{url}/revisions")[-1]
    assert (frozen["kind"], frozen["status"]) == ("publish", "published")
    frozen_sections = get(client, owner, f"{url}/revisions/{frozen['number']}")["sections"]
    assert frozen_sections == edited["sections"]

    clock.advance(minutes=1)
    later = edit(client, member, url, published["version"], summary="Amended after publishing")
    assert later["status"] == "published"
    assert (later["published_at"], later["published_by"]) == ("2026-11-26T10:01:00Z", owner.email)
    assert later["sections"]["summary"] == "Amended after publishing"
    assert get(client, owner, f"{url}/revisions/{frozen['number']}")["sections"] == frozen_sections
    assert get(client, owner, f"{url}/revisions/{frozen['number']}")["sections"]["summary"] == "Reviewed summary"
    assert get(client, owner, url)["status"] == "published"
    incident = get(client, owner, url.rsplit("/", 1)[0])
    assert incident["postmortem_status"] == "published"

    assert client.post(f"{url}/publish", headers=owner.headers).status_code == 200  # republished: version 2
    problem(client.post(f"{url}/publish", headers=owner.headers), 409, "invalid-state")  # nothing changed since
    assert [r["kind"] for r in get(client, owner, f"{url}/revisions")] == ["ai", "edit", "publish", "edit", "publish"]


def test_regenerating_a_published_postmortem_is_invalid_state(client, owner, clock):
    url, _ = drafted(client, owner)
    published = client.post(f"{url}/publish", headers=owner.headers).json()
    clock.advance(seconds=120)
    problem(regenerate(client, owner, url), 409, "invalid-state")
    problem(regenerate(client, owner, url, overwrite_edited=True), 409, "invalid-state")
    assert get(client, owner, url) == published
    assert [r["kind"] for r in get(client, owner, f"{url}/revisions")] == ["ai", "publish"]


def test_generate_for_an_unresolved_incident_is_invalid_state(client, owner):
    iid = incident(client, owner)
    body = problem(client.post(f"{API}/incidents/{iid}/postmortem", headers=owner.headers), 409, "invalid-state")
    assert "esolve" in body["detail"]
    problem(client.get(f"{API}/incidents/{iid}/postmortem", headers=owner.headers), 404, "not-found")
    assert get(client, owner, f"{API}/org/usage")["used"] == 0


def test_generate_when_one_exists_is_409(client, owner, clock):
    url, pm = drafted(client, owner)
    clock.advance(seconds=120)
    problem(client.post(url, headers=owner.headers), 409, "invalid-state")
    assert get(client, owner, url) == pm
    assert get(client, owner, f"{API}/org/usage")["used"] == 1


def test_regenerate_or_publish_without_a_postmortem_is_404(client, owner, clock):
    iid = incident(client, owner)
    url = f"{API}/incidents/{iid}/postmortem"
    clock.advance(seconds=120)
    problem(regenerate(client, owner, url), 404, "not-found")
    problem(client.post(f"{url}/publish", headers=owner.headers), 404, "not-found")
    problem(client.patch(url, json={"version": 1, "sections": {"summary": "x"}}, headers=owner.headers),
            404, "not-found")


class FailingEngine(BuiltinEngine):
    def draft(self, pack, context=None):
        raise UpstreamError("The drafting engine ran out of memory.")


def test_a_failed_generation_cannot_be_published_but_can_be_retried(client, owner, rt, clock):
    rt.engine_override = FailingEngine()
    iid = incident(client, owner)
    client.post(f"{API}/incidents/{iid}/resolve", headers=owner.headers)
    rt.engine_override = None
    url = f"{API}/incidents/{iid}/postmortem"
    failed = get(client, owner, url)
    assert (failed["status"], failed["sections"], failed["error"]) == (
        "failed", None, "The drafting engine ran out of memory.")
    problem(client.post(f"{url}/publish", headers=owner.headers), 409, "invalid-state")
    problem(client.patch(url, json={"version": failed["version"], "sections": {"summary": "x"}}, headers=owner.headers),
            409, "invalid-state")
    problem(regenerate(client, owner, url), 429, "rate-limited")  # the failed first generation started the clock
    clock.advance(seconds=60)
    assert regenerate(client, owner, url).status_code == 202
    assert get(client, owner, url)["status"] == "draft"
