"""Published versions in the service: publish freezes a version, edits after it are tracked, republish makes a new
one only when the text changed; the export names the version it carries."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from blametrail import db
from blametrail.engines.sections import SectionsPatch
from blametrail.errors import Forbidden, InvalidState, NotFound
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.postmortems import lifecycle
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.export import to_markdown, version_note


@pytest.fixture
def team(factory):
    return factory.team(plan="pro")


def drafted(rt, clock, owner) -> int:
    """A resolved incident whose automatic draft is ready; its id."""
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=owner.actor, now=clock.now(), data=IncidentCreate(
            title="Checkout errors", services=["checkout"], severity="SEV-2"))
        incidents.add_update(session=s, actor=owner.actor, incident=inc, now=clock.advance(minutes=5),
                             data=UpdateCreate(body="Rolled back checkout v2.3"))
        clock.advance(minutes=5)
        postmortems.resolve_incident(session=s, incident=inc, now=clock.now(), resolved_at=None,
                                     by_label=owner.actor.label, by_user_id=owner.actor.user_id)
        return inc.id


def publish(rt, clock, who, incident_id: int):
    with db.transaction(rt.factory) as s:
        return postmortems.publish(session=s, actor=who.actor, incident_id=incident_id, now=clock.now()).status


def edit(rt, clock, who, incident_id: int, summary: str) -> None:
    with db.transaction(rt.factory) as s:
        pm = postmortems.get_or_404(session=s, org_id=who.actor.org_id, incident_id=incident_id)
        postmortems.edit(session=s, actor=who.actor, incident_id=incident_id, version=pm.version,
                         patch=SectionsPatch.model_validate({"summary": summary}), now=clock.now())


def state(rt, who, incident_id: int) -> tuple[postmortems.Publication, dict]:
    with db.transaction(rt.factory) as s:
        pm = postmortems.get_or_404(session=s, org_id=who.actor.org_id, incident_id=incident_id)
        return postmortems.publication(session=s, pm=pm), dict(pm.sections)


def version(rt, who, incident_id: int, number: int | None = None) -> tuple[int, int, dict, str]:
    with db.transaction(rt.factory) as s:
        pm = postmortems.get_or_404(session=s, org_id=who.actor.org_id, incident_id=incident_id)
        v = postmortems.published_version(session=s, pm=pm, version=number)
        return v.version, v.latest, dict(v.revision.sections), v.revision.author


def test_versions_follow_publishes_and_edits_after_them(rt, clock, team):
    owner, admin, member = team["owner"], team["admin"], team["member"]
    iid = drafted(rt, clock, owner)
    pub, _ = state(rt, owner, iid)
    assert pub.latest is None and not pub.edited_after_publish
    with db.transaction(rt.factory) as s, pytest.raises(NotFound, match="not been published"):
        postmortems.published_version(session=s, pm=postmortems.find(session=s, org_id=owner.actor.org_id,
                                                                     incident_id=iid))

    clock.advance(minutes=1)
    assert publish(rt, clock, owner, iid) == "published"
    pub, sections = state(rt, owner, iid)
    assert (pub.latest.version, pub.edited_after_publish) == (1, False)
    assert version(rt, owner, iid) == (1, 1, sections, owner.email)

    clock.advance(minutes=1)
    edit(rt, clock, member, iid, "Amended by a member")
    pub, current = state(rt, owner, iid)
    assert (pub.latest.version, pub.edited_by, pub.edited_at) == (1, member.email, clock.now())
    assert version(rt, owner, iid)[2] == sections != current  # the published text stays frozen

    with pytest.raises(Forbidden):
        publish(rt, clock, member, iid)
    clock.advance(minutes=1)
    assert publish(rt, clock, admin, iid) == "published"
    pub, _ = state(rt, owner, iid)
    assert (pub.latest.version, pub.edited_after_publish) == (2, False)
    assert version(rt, owner, iid)[:2] == (2, 2) and version(rt, owner, iid)[2]["summary"] == "Amended by a member"
    assert version(rt, owner, iid, 1) == (1, 2, sections, owner.email)
    with pytest.raises(InvalidState, match="nothing changed since version 2"):
        publish(rt, clock, owner, iid)
    with db.transaction(rt.factory) as s, pytest.raises(NotFound, match="version 3 not found"):
        pm = postmortems.find(session=s, org_id=owner.actor.org_id, incident_id=iid)
        postmortems.published_version(session=s, pm=pm, version=3)
    with db.transaction(rt.factory) as s:
        kinds = [r.kind for r in postmortems.list_revisions(
            session=s, pm=postmortems.find(session=s, org_id=owner.actor.org_id, incident_id=iid))]
    assert kinds == ["ai", "publish", "edit", "publish"]


def test_an_edit_undone_again_leaves_nothing_to_republish(rt, clock, team):
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    publish(rt, clock, owner, iid)
    _, sections = state(rt, owner, iid)
    edit(rt, clock, member, iid, "Changed")
    assert state(rt, owner, iid)[0].edited_after_publish
    edit(rt, clock, member, iid, sections["summary"])
    assert not state(rt, owner, iid)[0].edited_after_publish
    with pytest.raises(InvalidState, match="nothing changed since version 1"):
        publish(rt, clock, owner, iid)


def test_simultaneous_republishes_make_one_new_version(rt, clock, team):
    """Owners pressing Republish together: one new version, the others told nothing changed (PostgreSQL: row lock)."""
    owner, member = team["owner"], team["member"]
    iid = drafted(rt, clock, owner)
    publish(rt, clock, owner, iid)
    edit(rt, clock, member, iid, "Changed after publishing")
    parallel = 6
    barrier = threading.Barrier(parallel)

    def republish(_: int) -> str:
        barrier.wait()
        try:
            return publish(rt, clock, owner, iid)
        except InvalidState as exc:
            return exc.detail

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = sorted(pool.map(republish, range(parallel)))
    assert outcomes == ["The postmortem is already published: nothing changed since version 2."] * (parallel - 1) + [
        "published"]
    assert version(rt, owner, iid)[:2] == (2, 2)


def test_changed_since_publish_is_a_plain_comparison():
    assert lifecycle.changed_since_publish({"summary": "a"}, None)
    assert lifecycle.changed_since_publish({"summary": "a"}, {"summary": "b"})
    assert not lifecycle.changed_since_publish({"summary": "a"}, {"summary": "a"})


def test_the_version_sentence():
    assert version_note(published_version=None, published_at=None, published_by=None) is None
    assert version_note(published_version=2, published_at="2024-05-02T09:00:00Z", published_by="ana@x.test") == (
        "Published version 2 (2024-05-02 09:00 UTC, by ana@x.test)")
    assert version_note(published_version=2, published_at="2024-05-02T09:00:00Z", published_by="ana@x.test",
                        edited_at="2024-05-03T10:30:00Z", edited_by="bo@x.test") == (
        "Edited after publishing version 2 — not yet republished (last edit 2024-05-03 10:30 UTC by bo@x.test).")


def _export(**extra) -> str:
    args = {"title": "Checkout errors", "incident_id": 42, "status": "published", "sections": {"summary": "S"},
            "engine": "builtin", "published_at": "2024-05-02T09:00:00Z", "generated_at": "2024-05-01T11:00:00Z"}
    return to_markdown(**(args | extra))


def test_the_export_names_its_version():
    published = _export(published_version=1, published_by="ana@x.test")
    assert "- **Version:** Published version 1 (2024-05-02 09:00 UTC, by ana@x.test)" in published
    assert "not yet republished" not in published and "\n> " not in published
    edited = _export(published_version=1, published_by="ana@x.test", edited_at="2024-05-03T10:30:00Z",
                     edited_by="bo_b@x.test")
    first = edited.split("\n\n")[1]
    assert first.startswith("> **Edited after publishing version 1 — not yet republished (last edit "
                            "2024-05-03 10:30 UTC by bo\\_b@x.test).**")
    assert "- **Version:** Edited after publishing version 1 — not yet republished" in edited
    assert "Version:" not in _export(published_at=None, status="draft")
