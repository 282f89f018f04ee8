"""Incident fingerprints and how alike two incidents are, with the reasons a reader can check (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from blametrail.analysis import similarity
from blametrail.analysis.evidence import PriorIncident
from blametrail.analysis.observations import LogEvidence
from blametrail.engines.builtin import BuiltinEngine
from tests.analysis.factories import T0, bad_deploy_pack, make_pack

FP = similarity.Fingerprint


def test_reasons_name_what_matched_and_weights_order_the_score():
    a = FP(services=frozenset({"checkout"}), category="database", files=frozenset({"checkout/db/pool.py"}),
           templates=frozenset({"pool exhausted after #s"}), alerts=frozenset({"HighErrorRate"}),
           terms=frozenset({"checkout", "pool"}), labels={"pool exhausted after #s": "pool exhausted after 30s"})
    same = replace(a, labels={})
    score, reasons = similarity.compare(a, same)
    assert score == 1.0
    assert reasons == ("same service: checkout", "same cause: " + similarity.category_label("database"),
                       "same suspect file: checkout/db/pool.py", "same log pattern: “pool exhausted after 30s”",
                       "same alert: HighErrorRate", "similar title")
    service_only = FP(services=frozenset({"checkout"}))
    cause_and_file = FP(services=frozenset({"payments"}), category="database",
                        files=frozenset({"checkout/db/pool.py"}))
    assert similarity.compare(a, service_only)[0] < similarity.compare(a, cause_and_file)[0]
    assert similarity.compare(a, FP()) == (0.0, ())
    assert FP.from_json(a.to_json()) == a


def test_log_patterns_match_across_numbers_and_ids():
    one = similarity.template_key("Timeout after 3000ms talking to db-7 (conn 0x7f3a) 'orders'")
    two = similarity.template_key("Timeout after 5000ms talking to db-12 (conn 0x1b2c) 'payments'")
    assert one == two


def test_a_packs_fingerprint_carries_the_cause_suspect_files_and_patterns():
    pack = bad_deploy_pack()
    log = LogEvidence(id="log_1", template="PaymentTimeout after <*> ms", service="checkout", incident_count=40,
                      baseline_count=0, new=True, spike_ratio=None, first_seen=T0)
    assert similarity.from_pack(pack).category == "deploy"  # a deploy stands out and no other cause dominates
    fp = similarity.from_pack(replace(pack, logs=(log,)))
    assert fp.services == {"checkout"} and fp.category == "dependency"  # the timeouts point at a dependency
    assert fp.files == {"src/checkout/payment_client.py"}  # the suspect commit's, not the README's
    assert fp.templates == {similarity.template_key("PaymentTimeout after <*> ms")}
    assert "checkout" in fp.terms


def test_the_draft_says_which_earlier_incident_it_resembles_and_cites_it():
    prior = PriorIncident("inc_12", "Checkout pool exhausted", ("checkout",), T0 - timedelta(days=30),
                          T0 - timedelta(days=30, minutes=-40), "SEV-2", score=0.8,
                          reasons=("same service: checkout", "same suspect file: checkout/db/pool.py"))
    pack = replace(make_pack(), prior_incidents=(prior,))
    factors = BuiltinEngine().draft(pack).sections["contributing_factors"]
    line = next(f for f in factors if "resembles" in f)
    assert line.startswith("This resembles #12 of 1 Apr 2024 (“Checkout pool exhausted”): same service: checkout; "
                           "same suspect file: checkout/db/pool.py")
    assert "inc_12" in line
    weak = replace(prior, reasons=("same service: checkout",))  # a shared service alone is not a resemblance
    factors = BuiltinEngine().draft(replace(pack, prior_incidents=(weak,))).sections["contributing_factors"]
    assert not any("resembles" in f for f in factors)
