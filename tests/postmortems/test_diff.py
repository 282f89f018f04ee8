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


def test_a_rewritten_phrase_is_one_change_not_word_and_space_confetti():
    parts = diff.words("Cause: the database pool ran out.", "Cause: a cache stampede filled every worker.")
    assert parts == (("=", "Cause: "), ("-", "the database pool ran out."),
                     ("+", "a cache stampede filled every worker."))
    assert diff.words("", "") == () and diff.words("", "new text") == (("+", "new text"),)


def test_long_texts_of_common_words_compare_quickly_and_still_add_up():
    # why: plain difflib took 96 s on two 4,000-word texts of common words — a page any viewer can open
    import random
    import time

    rnd = random.Random(7)
    vocab = ["the", "a", "of", "to", "and", "pool", "db"]

    def sentence():
        return " ".join(rnd.choice(vocab) for _ in range(rnd.randint(5, 20))) + "."

    base = " ".join(sentence() for _ in range(300))
    cases = [(" ".join(rnd.choice(vocab) for _ in range(4000)), " ".join(rnd.choice(vocab) for _ in range(4000))),
             (base, " ".join(sentence() for _ in range(300))),
             (base, base.replace("pool", "POOL", 3))]
    for before, after in cases:
        started = time.perf_counter()
        parts = diff.words(before, after)
        assert time.perf_counter() - started < 2
        assert "".join(t for op, t in parts if op != "+") == before
        assert "".join(t for op, t in parts if op != "-") == after
    parts = diff.words(*cases[2])  # a long text with small edits is still marked word by word
    assert " ".join(t for op, t in parts if op == "-").split() == ["pool"] * 3
    assert " ".join(t for op, t in parts if op == "+").split() == ["POOL"] * 3
