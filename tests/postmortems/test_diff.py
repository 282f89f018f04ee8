"""The section-by-section comparison of two postmortem texts (pure)."""

from __future__ import annotations

from blametrail.postmortems import diff

LAYOUT = [{"key": "summary", "title": "Summary", "extra": False},
          {"key": "timeline", "title": "Timeline", "extra": False},
          {"key": "what_went_well", "title": "What went well", "extra": False},
          {"key": "comms", "title": "Customer communication", "extra": True}]


def test_words_mark_only_what_changed():
    parts = diff.words("The pool was exhausted by v2.3", "The connection pool was exhausted by v2.3.0")
    assert [t.strip() for op, t in parts if op == "+"] == ["connection", "v2.3.0"]
    assert [op for op, _ in parts].count("-") == 1  # only "v2.3" went
    assert "".join(t for op, t in parts if op != "-") == "The connection pool was exhausted by v2.3.0"
    assert "".join(t for op, t in parts if op != "+") == "The pool was exhausted by v2.3"
    assert diff.words("same", "same") == (("=", "same"),)


def test_sections_compare_in_layout_order_with_rows_and_extra_sections():
    before = {"summary": "Checkout failed.", "what_went_well": ["Fast rollback", "Clear updates"],
              "timeline": [{"at": "10:00", "source": "deploy", "description": "Deployed", "evidence": ["deploy_1"]}],
              "extra": {"comms": "Status page updated."}}
    after = {"summary": "Checkout failed.", "what_went_well": ["Fast rollback (9 min)", "Clear updates", "Paging"],
             "timeline": [{"at": "10:00", "source": "deploy", "description": "Deployed", "evidence": ["deploy_1"]}],
             "extra": {}}
    out = diff.compare(before, after, LAYOUT)
    assert [s.key for s in out] == ["summary", "timeline", "what_went_well", "extra:comms"]
    summary, timeline, well, comms = out
    assert not summary.changed and not timeline.changed and timeline.rows[0].op == "="
    assert well.changed and [r.op for r in well.rows] == ["~", "=", "+"]
    assert [t.strip() for op, t in well.rows[0].parts if op == "+"] == ["(9 min)"]
    assert comms.changed and comms.removed == 3 and comms.added == 0
