"""A very long incident's timeline stays readable and valid: turning points kept, the rest sampled, a note."""

from __future__ import annotations

from blametrail.analysis import timeline
from blametrail.analysis.writer import write_postmortem
from blametrail.engines.sections import Sections
from tests.analysis.factories import at, make_pack, update


def test_ten_thousand_updates_draft_a_bounded_timeline():
    updates = tuple(update(f"upd_{n}", n * 0.002, f"Restarted worker {n}") for n in range(1, 10_001))
    pack = make_pack(updates=updates, resolved_after=30)
    rows = timeline.build(pack, ())
    assert len(rows) <= timeline.MAX_ROWS
    assert [r["source"] for r in rows].count("status") >= 3  # opened, resolved and the note
    note = next(r for r in rows if "more timeline entries" in r["description"])
    left_out = int(note["description"].split()[0])
    assert left_out == 10_000 - sum(r["source"] == "update" for r in rows) and "(update)" in note["description"]
    cited = [r["evidence"][0] for r in rows if r["source"] == "update"]
    assert cited[0] == "upd_1" and cited[-1] == "upd_10000"  # the first and last words are kept
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    Sections.model_validate(write_postmortem(pack))  # the draft is valid (it was refused at 5,000 rows)


def test_short_timelines_are_untouched():
    rows = [{"at": (at(n)).isoformat(), "source": "update", "description": f"u{n}", "evidence": [f"upd_{n}"]}
            for n in range(10)]
    assert timeline.bounded(rows) == rows
    long = rows * 40
    kept = timeline.bounded(long, limit=60)
    assert len(kept) == 60 and sum("more timeline entries" in r["description"] for r in kept) == 1
