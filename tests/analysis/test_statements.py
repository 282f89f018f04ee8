"""Cause statements in natural language: each phrasing is recognised, quoted and cited; non-causal uses are not."""

from __future__ import annotations

import pytest

from blametrail.analysis.statements import phrasing, stated_cause, statements, without_label
from blametrail.analysis.writer import NOT_ESTABLISHED, write_postmortem

from .factories import make_pack, update


@pytest.mark.parametrize(("sentence", "phrase", "explicit"), [
    ("Root cause: the payment client timeout was lowered in v2.3.", "root cause", True),
    ("The root cause was a full disk on db-2.", "root cause", True),
    ("RCA: connection pool limited to 5 per pod.", "root cause", True),
    ("Cause: expired TLS certificate on the gateway.", "cause", True),
    ("The cause was an expired TLS certificate on the payment gateway.", "cause", True),
    ("A stale DNS record was the cause.", "cause", True),
    ("The errors were caused by a bad config push.", "caused by", True),
    ("The outage was triggered by a cron job that flushed the cache.", "caused by", True),
    ("The pool change caused the 502s.", "caused", True),
    ("It turned out the certificate had expired on Sunday.", "turned out", True),
    ("Turns out the new index was never built.", "turned out", True),
    ("The issue was that the pool allowed only 5 connections.", "the issue was", True),
    ("The problem was a missing feature flag default.", "the issue was", True),
    ("Culprit: a retry storm from the mobile app.", "the issue was", True),
    ("Traced it back to a misconfigured load balancer.", "traced to", True),
    ("The failure resulted from a full disk.", "traced to", True),
    ("It came down to a race in the cache warmup.", "traced to", True),
    ("Checkout failed because the pool was exhausted.", "because", False),
    ("Latency is high due to a slow query on orders.", "because", False),
    ("We saw 502s because the pool was exhausted.", "because", False),
    ("Payments failed as a result of the expired token.", "because", False),
    ("Capacity was cut to almost nothing because the quota system over-corrected.", "because", False),
])
def test_each_phrasing_states_a_cause(sentence, phrase, explicit):
    found = phrasing(sentence)
    assert found is not None, sentence
    assert found[:2] == (phrase, explicit)
    assert found[2] is False  # not hedged


@pytest.mark.parametrize("sentence", [
    "Root cause still unknown, investigating.",  # unknown
    "Cause not yet identified.",
    "We are still investigating the root cause.",
    "Is it because of the deploy?",  # a question
    "It might be the DNS change.",  # speculation
    "This could be caused by the new cache.",
    "Possibly due to the holiday traffic.",
    "We suspect the deploy caused the errors.",
    "Not sure whether the failover caused this.",
    "This was not caused by the deploy.",  # negated
    "The root cause isn't the database.",
    "The cause was not the deploy.",
    "We ruled out the deploy as the cause.",
    "The issue was resolved at 10:30.",  # a state, not a cause
    "The problem is still happening in EU.",
    "Turned out to be a false alarm.",
    "The deploy turned out fine.",
    "Rolling back because errors are rising.",  # justifies an action
    "We rolled back because the deploy looked suspicious.",
    "Paged the database team because latency kept climbing.",
    "Errors recovered because we rolled back.",  # explains a recovery
    "The next deploy is due to start at 3pm.",  # a schedule
    "Restarting caused a brief blip.",  # an action's side effect
    "Checkout errors, investigating.",  # no phrasing at all
])
def test_non_causal_uses_are_rejected(sentence):
    assert phrasing(sentence) is None, sentence


def test_softer_wording_is_kept_but_marked_hedged():
    assert phrasing("We think the cause is a memory leak in the cache.") == ("cause", True, True)
    assert phrasing("Probably caused by the config push at 10:02.") == ("caused by", True, True)


def test_a_heading_on_its_own_line_is_joined_with_the_text_below():
    found = statements([update("upd_1", 20, "Postmortem notes.\nRoot cause:\nthe pool allowed only 5 connections.")])
    assert [s.sentence for s in found] == ["Root cause: the pool allowed only 5 connections."]
    assert without_label(found[0].sentence) == "the pool allowed only 5 connections."


def test_explicit_beats_implicit_plain_beats_hedged_then_the_latest_wins():
    updates = [
        update("upd_1", 5, "Errors are high because the cache is cold."),
        update("upd_2", 10, "Root cause: the cache warmup job was disabled in v4.1."),
        update("upd_3", 15, "We think the root cause is a bad index."),
        update("upd_4", 18, "Errors again because of cold cache."),
    ]
    assert stated_cause(updates).update_id == "upd_2"
    later = [*updates, update("upd_5", 30, "The root cause was the disabled warmup job, confirmed.")]
    assert stated_cause(later).update_id == "upd_5"
    assert stated_cause(updates[:1] + updates[3:]).update_id == "upd_4"


@pytest.mark.parametrize("body", [
    "Cause: a retry storm from the mobile app overloaded payments.",
    "Payments were overloaded because a retry storm from the mobile app hit them.",
    "It turned out a retry storm from the mobile app overloaded payments.",
    "The issue was a retry storm from the mobile app.",
    "The errors were caused by a retry storm from the mobile app.",
])
def test_the_draft_quotes_and_cites_the_statement_and_confidence_reflects_it(body):
    pack = make_pack(updates=(update("upd_1", 4, "Payments failing, investigating."), update("upd_2", 15, body)))
    draft = write_postmortem(pack)
    assert f"“{body}” (evidence: upd_2)" in draft["root_cause"]
    assert not draft["root_cause"].startswith(NOT_ESTABLISHED)
    assert draft["confidence"]["level"] == "medium" and "upd_2" in draft["confidence"]["reason"]
    assert "no update states a cause" not in draft["confidence"]["reason"]
    assert "retry storm" in draft["summary"]


def test_without_a_statement_the_draft_says_so_and_confidence_is_low():
    pack = make_pack(updates=(update("upd_1", 4, "Payments failing; it might be the retry storm, not sure."),))
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith(NOT_ESTABLISHED) and "no update states a cause" in draft["root_cause"]
    assert draft["confidence"]["level"] == "low"


def test_a_cause_posted_after_the_resolution_counts_and_is_said_to_be_a_follow_up():
    pack = make_pack(resolved_after=30, updates=(
        update("upd_1", 4, "Payments failing, investigating."),
        update("upd_2", 90, "Follow-up: the root cause was an expired API token for the card processor."),
    ))
    draft = write_postmortem(pack)
    assert "(evidence: upd_2)" in draft["root_cause"]
    assert "A follow-up after the resolution wrote the cause down (evidence: upd_2)." in draft["what_went_well"]


def test_a_hedged_statement_never_gives_high_confidence():
    from .factories import bad_deploy_pack

    plain = write_postmortem(bad_deploy_pack())
    assert plain["confidence"]["level"] == "high"
    hedged = bad_deploy_pack(updates=(
        update("upd_1", 3, "Customers see 502 errors at checkout."),
        update("upd_2", 12, "Rolled back checkout v2.3 to v2.2, error rate dropping."),
        update("upd_3", 20, "Root cause is probably the payment client timeout lowered in v2.3."),
    ))
    draft = write_postmortem(hedged)
    assert draft["confidence"]["level"] == "medium"
    assert "The update hedges" in draft["confidence"]["reason"]
