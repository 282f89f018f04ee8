"""Per-section merge of postmortem edits: a save based on an older version keeps everyone's changes to different
sections; only a section both people changed, to different text, is a conflict (and nothing is saved then)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update

from blametrail import db
from blametrail.engines.sections import SectionsPatch
from blametrail.errors import VersionConflict
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Postmortem, Revision

API = "/api/v1"


@pytest.fixture
def team(factory):
    return factory.team(plan="pro")


def drafted(rt, clock, owner) -> int:
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=owner.actor, now=clock.now(), data=IncidentCreate(
            title="Checkout errors", services=["checkout"], severity="SEV-2"))
        incidents.add_update(session=s, actor=owner.actor, incident=inc, now=clock.advance(minutes=5),
                             data=UpdateCreate(body="Rolled back checkout v2.3"))
        clock.advance(minutes=5)
        postmortems.resolve_incident(session=s, incident=inc, now=clock.now(), resolved_at=None,
                                     by_label=owner.actor.label, by_user_id=owner.actor.user_id)
        return inc.id


def current(rt, who, iid: int) -> tuple[int, dict, list[str]]:
    with db.transaction(rt.factory) as s:
        pm = postmortems.get_or_404(session=s, org_id=who.actor.org_id, incident_id=iid)
        return pm.version, dict(pm.sections), list(pm.edited_keys or [])


def edit(rt, clock, who, iid: int, version: int, **sections) -> int:
    with db.transaction(rt.factory) as s:
        pm = postmortems.edit(session=s, actor=who.actor, incident_id=iid, version=version,
                              patch=SectionsPatch.model_validate(sections), now=clock.now())
        return pm.version


def revisions(rt, who, iid: int) -> list[tuple[str, int | None]]:
    with db.transaction(rt.factory) as s:
        pm = postmortems.get_or_404(session=s, org_id=who.actor.org_id, incident_id=iid)
        return [(r.kind, r.version) for r in postmortems.list_revisions(session=s, pm=pm)]


def test_a_save_on_the_current_version_marks_only_changed_sections_edited(rt, clock, team):
    owner = team["owner"]
    iid = drafted(rt, clock, owner)
    base, sections, _ = current(rt, owner, iid)
    assert edit(rt, clock, owner, iid, base, summary="New summary", root_cause=sections["root_cause"]) == base + 1
    version, now, edited = current(rt, owner, iid)
    assert now["summary"] == "New summary" and edited == ["summary"]
    assert revisions(rt, owner, iid)[-1] == ("edit", version)


def test_edits_to_different_sections_from_the_same_version_are_both_kept(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, sections, _ = current(rt, owner, iid)
    edit(rt, clock, owner, iid, base, summary="Owner's summary")
    # the member loaded the same version, changed the root cause, and sends the summary they loaded unchanged
    version = edit(rt, clock, member, iid, base, root_cause="Member's root cause", summary=sections["summary"])
    assert version == base + 2
    _, now, edited = current(rt, owner, iid)
    assert (now["summary"], now["root_cause"]) == ("Owner's summary", "Member's root cause")
    assert sorted(edited) == ["root_cause", "summary"]
    assert [k for k, _ in revisions(rt, owner, iid)][-2:] == ["edit", "edit"]
    assert revisions(rt, owner, iid)[-1][1] == base + 2


def test_the_same_section_changed_differently_is_a_conflict_naming_only_it(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    edit(rt, clock, owner, iid, base, summary="Owner's summary", severity="SEV-1")
    with pytest.raises(VersionConflict) as caught:
        edit(rt, clock, member, iid, base, summary="Member's summary", root_cause="Member's root cause")
    assert caught.value.extra == {"current_version": base + 1, "sections": ["summary"]}
    assert "Summary" in caught.value.detail and "Root cause" not in caught.value.detail
    version, now, edited = current(rt, owner, iid)  # nothing of the conflicting save is kept
    assert (version, now["summary"], edited) == (base + 1, "Owner's summary", ["severity", "summary"])
    assert now["root_cause"] != "Member's root cause"


def test_the_same_section_changed_to_the_same_text_is_not_a_conflict(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    edit(rt, clock, owner, iid, base, summary="Agreed summary")
    assert edit(rt, clock, member, iid, base, summary="Agreed summary", severity="SEV-4") == base + 2
    _, now, _ = current(rt, owner, iid)
    assert (now["summary"], now["severity"]) == ("Agreed summary", "SEV-4")


def test_a_section_sent_unchanged_never_undoes_their_edit(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, sections, _ = current(rt, owner, iid)
    edit(rt, clock, owner, iid, base, timeline=[])
    edit(rt, clock, member, iid, base, timeline=sections["timeline"], severity="SEV-1")
    _, now, edited = current(rt, owner, iid)
    assert now["timeline"] == [] and now["severity"] == "SEV-1" and sorted(edited) == ["severity", "timeline"]


def test_a_merge_spans_several_later_versions(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    v = edit(rt, clock, owner, iid, base, summary="One")
    edit(rt, clock, owner, iid, v, severity="SEV-1")
    edit(rt, clock, member, iid, base, root_cause="Pool exhausted")
    _, now, _ = current(rt, owner, iid)
    assert (now["summary"], now["severity"], now["root_cause"]) == ("One", "SEV-1", "Pool exhausted")
    with pytest.raises(VersionConflict) as caught:  # the base is older than both of the owner's changes
        edit(rt, clock, member, iid, base, severity="SEV-4", summary="Two", confidence={"level": "high"})
    assert caught.value.extra["sections"] == ["severity", "summary"]


def test_an_unknown_base_version_is_a_conflict_as_before(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    edit(rt, clock, owner, iid, base, summary="Owner's summary")
    for version in (base + 5, 0, 2**40):
        with pytest.raises(VersionConflict) as caught:
            edit(rt, clock, member, iid, version, root_cause="x")
        assert "sections" not in caught.value.extra
    with db.transaction(rt.factory) as s:  # revisions from before versions were recorded have none
        s.execute(update(Revision).values(version=None))
    with pytest.raises(VersionConflict) as caught:
        edit(rt, clock, member, iid, base, root_cause="x")
    assert caught.value.extra == {"current_version": base + 1}
    assert current(rt, owner, iid)[1]["root_cause"] != "x"


def test_the_api_names_the_conflicting_sections(client, team, clock):
    owner, member = team["owner"], team["member"]
    r = client.post(f"{API}/incidents", headers=owner.headers, json={
        "title": "Checkout 500s", "services": ["checkout"], "started_at": "2026-11-26T09:30:00Z"})
    iid = r.json()["id"]
    assert client.post(f"{API}/incidents/{iid}/resolve", headers=owner.headers).status_code == 200
    url = f"{API}/incidents/{iid}/postmortem"
    base = client.get(url, headers=owner.headers).json()["version"]
    assert client.patch(url, json={"version": base, "sections": {"summary": "A", "severity": "SEV-1"}},
                        headers=owner.headers).status_code == 200
    merged = client.patch(url, json={"version": base, "sections": {"root_cause": "B"}}, headers=member.headers)
    assert merged.status_code == 200, merged.text
    assert (merged.json()["version"], merged.json()["sections"]["summary"]) == (base + 2, "A")
    r = client.patch(url, json={"version": base, "sections": {"summary": "C", "severity": "SEV-4", "root_cause": "B"}},
                     headers=member.headers)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert (body["type"], body["current_version"], body["sections"]) == (
        "/problems/version-conflict", base + 2, ["severity", "summary"])


def test_simultaneous_saves_of_different_sections_are_all_kept(rt, clock, team):
    """Threads saving different sections from one base version at once: every save lands (retry on a lost race)."""
    owner = team["owner"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    changes = [{"summary": "S"}, {"root_cause": "R"}, {"severity": "SEV-1"}, {"what_went_well": ["W"]}]
    barrier = threading.Barrier(len(changes))

    def save(sections: dict) -> int:
        barrier.wait()
        return edit(rt, clock, owner, iid, base, **sections)

    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        versions = sorted(pool.map(save, changes))
    assert versions == [base + 1, base + 2, base + 3, base + 4]
    version, now, edited = current(rt, owner, iid)
    assert version == base + 4
    assert (now["summary"], now["root_cause"], now["severity"], now["what_went_well"]) == ("S", "R", "SEV-1", ["W"])
    assert sorted(edited) == ["root_cause", "severity", "summary", "what_went_well"]


def test_simultaneous_saves_of_the_same_section_save_one(rt, clock, team):
    owner = team["owner"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    barrier = threading.Barrier(2)

    def save(text: str) -> str:
        barrier.wait()
        try:
            edit(rt, clock, owner, iid, base, summary=text)
            return "saved"
        except VersionConflict as exc:
            return ",".join(exc.extra["sections"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(save, ["A", "B"])) == ["saved", "summary"]
    assert current(rt, owner, iid)[0] == base + 1


def test_a_save_landing_between_read_and_write_is_merged_on_retry(rt, clock, team, monkeypatch):
    """Deterministic race: another save commits after this edit read the current version, before it writes."""
    if rt.factory.kw["bind"].dialect.name == "sqlite":
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): no save can land inside another's transaction")
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    base, _, _ = current(rt, owner, iid)
    real = postmortems._normalized
    calls = {"n": 0}

    def interleaved(sections):
        calls["n"] += 1
        if calls["n"] == 2:  # the first read of the current sections inside the merge loop
            with db.transaction(rt.factory) as other:
                pm = other.get(Postmortem, other.scalar(
                    Postmortem.__table__.select().with_only_columns(Postmortem.id)
                    .where(Postmortem.incident_id == iid)))
                postmortems.edit(session=other, actor=owner.actor, incident_id=iid, version=pm.version,
                                 patch=SectionsPatch.model_validate({"summary": "Landed meanwhile"}), now=clock.now())
        return real(sections)

    monkeypatch.setattr(postmortems, "_normalized", interleaved)
    assert edit(rt, clock, member, iid, base, root_cause="Mine") == base + 2
    _, now, _ = current(rt, owner, iid)
    assert (now["summary"], now["root_cause"]) == ("Landed meanwhile", "Mine")
