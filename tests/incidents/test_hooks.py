"""The incidents service fires its hooks in the caller's transaction; only a wired session factory acts on them."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from blametrail import db
from blametrail.incidents import hooks
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.summaries import service as summaries


def _recording_factory(rt, calls: list) -> sessionmaker:
    factory = db.make_sessionmaker(rt.engine)
    hooks.install(factory, hooks.IncidentHooks(
        evidence_changed=lambda *, session, incidents, now: calls.append(("evidence", [i.id for i in incidents])),
        resolved=lambda *, session, incident, now: calls.append(("resolved", incident.status))))
    return factory


def test_each_change_fires_its_hook_inside_the_transaction(rt, factory):
    actor = factory.team()["member"].actor
    calls: list = []
    with db.transaction(_recording_factory(rt, calls)) as s:
        inc = incidents.create(session=s, actor=actor, now=rt.clock.now(), data=IncidentCreate(title="x"))
        incidents.add_update(session=s, actor=actor, incident=inc, now=rt.clock.now(), data=UpdateCreate(body="y"))
        incidents.resolve(session=s, incident=inc, now=rt.clock.now(), resolved_at=None, by_label="t", by_user_id=None)
        assert calls == [("evidence", [inc.id]), ("evidence", [inc.id]), ("resolved", "resolved")]


def test_an_unwired_session_fires_nothing(rt, factory):
    actor = factory.team()["member"].actor
    with db.transaction(db.make_sessionmaker(rt.engine)) as s:
        inc = incidents.create(session=s, actor=actor, now=rt.clock.now(), data=IncidentCreate(title="x"))
        assert summaries.find(session=s, incident_id=inc.id) is None


def test_the_runtime_wires_the_live_summary(rt, factory):
    actor = factory.team()["member"].actor
    with db.transaction(rt.factory) as s:
        inc = incidents.create(session=s, actor=actor, now=rt.clock.now(), data=IncidentCreate(title="x"))
        assert summaries.find(session=s, incident_id=inc.id).status == "queued"
        s.info["deferred"] = []
