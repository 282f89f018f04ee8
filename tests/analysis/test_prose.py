"""Prose an engineer would write: a short summary, and no sentence or boilerplate repeated across sections."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from blametrail.analysis.evidence import MonitorCoverage, PriorIncident
from blametrail.analysis.writer import MAX_SUMMARY_SENTENCES, write_postmortem

from .factories import T0, bad_deploy_pack, make_pack, status, update
from .observability import log, metric

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Za-z“(])")


def _packs():
    busy = replace(
        make_pack(severity=None, title="Checkout down for all customers", resolved_after=346,
                  services=("api", "auth", "checkout", "payments", "search"),
                  statuses=(status("st_1", 0, "open", actor="kim"), status("st_2", 346, "resolved")),
                  updates=(update("upd_1", 30, "Customers cannot check out; 502s everywhere."),
                           update("upd_2", 40, "Restarted the pods, no effect."),
                           update("upd_3", 200, "Root cause: the auth token signing key rotated without a reload."),
                           update("upd_4", 400, "Follow-up: fix merged and deployed."))),
        metrics=(metric("metric_1", -6), metric("metric_2", 4, service="payments")),
        logs=(log("log_1", -5, "ERROR signature verification failed for token <*>", count=400),),
        monitors=(MonitorCoverage("checkout-health", "checkout"),),
        prior_incidents=(PriorIncident("inc_3", "Auth errors after key rotation", ("auth",), T0 - timedelta(days=9),
                                       None),))
    return [bad_deploy_pack(), bad_deploy_pack(updates=()), make_pack(updates=(), deploys=()),
            make_pack(resolved_after=None, resolved_by=None), busy]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


@pytest.mark.parametrize("pack", _packs())
def test_summary_has_at_most_five_sentences(pack):
    summary = write_postmortem(pack)["summary"]
    assert 1 <= len(_sentences(summary)) <= MAX_SUMMARY_SENTENCES == 5, summary


@pytest.mark.parametrize("pack", _packs())
def test_no_sentence_or_opening_boilerplate_repeats_across_sections(pack):
    draft = write_postmortem(pack)
    sections = {
        "summary": [draft["summary"]], "impact": [draft["customer_impact"]["description"]],
        "root_cause": [draft["root_cause"]], "factors": draft["contributing_factors"],
        "well": draft["what_went_well"], "poorly": draft["what_went_poorly"],
        "actions": [i["title"] for i in draft["action_items"]], "confidence": [draft["confidence"]["reason"]],
    }
    seen: dict[str, str] = {}
    for name, texts in sections.items():
        for text in texts:
            for sentence in _sentences(text):
                key = re.sub(r"\W+", " ", sentence.lower()).strip()
                if len(key.split()) < 6:
                    continue
                assert seen.setdefault(key, name) == name, f"repeated in {seen[key]} and {name}: {sentence}"
    title = pack.incident.title
    prose = " ".join(t for name, texts in sections.items() for t in texts if name != "summary")
    assert title not in prose  # the title belongs to the summary only
    assert "The incident “" not in draft["summary"] + prose
    starts = [_sentences(t)[0][:25] for texts in sections.values() for t in texts if t]
    assert all(starts.count(s) <= 3 for s in starts), starts


def test_the_summary_reads_what_when_cause_and_ending_in_that_order():
    summary = write_postmortem(_packs()[-1])["summary"]
    parts = _sentences(summary)
    assert parts[0] == ("Checkout down for all customers: api, auth, checkout, payments and search were affected for "
                        "346 minutes on 2024-05-01, 10:00–15:46 UTC.")
    assert parts[1] == ("The cause, in the responders' words: “the auth token signing key rotated without a "
                        "reload”.")
    assert parts[2] == "sam resolved it at 15:46."
    assert parts[3] == "Rated SEV-1 by the severity definitions, as none was recorded."


def test_an_open_incident_says_so_in_one_sentence():
    summary = write_postmortem(make_pack(resolved_after=None, resolved_by=None))["summary"]
    assert _sentences(summary)[0] == "Checkout errors: checkout was affected since 2024-05-01 10:00 UTC, and it is " \
                                     "not resolved yet."
