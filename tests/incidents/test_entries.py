"""System timeline entries (monitor checks, alerts) keep their text within the column and say when it was cut."""

from __future__ import annotations

from blametrail import db
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate


def test_an_over_long_system_entry_is_cut_with_a_visible_note(rt, factory):
    actor = factory.team()["member"].actor
    body = "x" * 28_000
    with db.transaction(db.make_sessionmaker(rt.engine)) as s:
        inc = incidents.create(session=s, actor=actor, now=rt.clock.now(), data=IncidentCreate(title="long"))
        entry = incidents.add_entry(session=s, incident=inc, kind="alert", at=rt.clock.now(), body=body,
                                    now=rt.clock.now())
        short = incidents.add_entry(session=s, incident=inc, kind="alert", at=rt.clock.now(), body="fits",
                                    now=rt.clock.now())
        assert len(entry.body) <= incidents.MAX_BODY
        assert entry.body.startswith("x" * 19_000)
        assert entry.body.endswith("8,080 more characters cut]")
        assert short.body == "fits"
