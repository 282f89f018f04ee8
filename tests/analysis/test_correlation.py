"""Suspects and causes from findings: metric onset, files and words shared with errors, other-cause categories."""

from __future__ import annotations

from dataclasses import replace

from blametrail.analysis import causes, correlate
from blametrail.analysis.suspects import rank_suspects, standout
from blametrail.analysis.verdict import incident_onset, ranked_causes, root_cause_category

from .factories import T0, at, commit, deploy, make_pack
from .observability import log, metric

TRACE = ('ERROR charge failed: Traceback (most recent call last): File "/app/payments/client.py", line <*>, '
         "in charge_card TimeoutError")
CULPRIT = deploy("deploy_1", -9, version="v2.3", commits=(
    commit("commit_1", "aaaaaaa1111111", "Lower charge_card timeout", files=("src/payments/client.py",)),))
BYSTANDER = deploy("deploy_2", -2, version="v2.4", commits=(
    commit("commit_2", "bbbbbbb2222222", "Tidy README wording", author="bob", files=("README.md",)),))


def _pack(**kwargs):
    fields = {"metrics": (metric("metric_1", -1),), "logs": (log("log_1", 0, TRACE),), "observed": True}
    fields.update(kwargs)
    return replace(make_pack(deploys=fields.pop("deploys", (CULPRIT, BYSTANDER))), **fields)


def test_onset_is_the_earliest_metric_change_on_the_incident_services():
    pack = _pack(metrics=(metric("metric_1", 3), metric("metric_2", -4, series_name="latency_p99"),
                          metric("metric_3", -20, service="search"), metric("metric_4", -50)))
    assert incident_onset(pack) == at(-4)  # search is not affected; -50 is too long before the start
    assert incident_onset(make_pack()) == T0
    only_logs = _pack(metrics=(), logs=(log("log_1", -3, TRACE),))
    assert incident_onset(only_logs) == at(-3)


def test_file_named_in_the_error_beats_a_closer_unrelated_deploy():
    suspects = rank_suspects(_pack())
    assert [s.deploy_id for s in suspects] == ["deploy_1", "deploy_2"]
    top = standout(suspects)
    assert top is not None and top.deploy_id == "deploy_1"
    assert "touched src/payments/client.py which appears in the new error template log_1" in top.reasons
    assert top.evidence_ids == ("metric_1", "log_1")  # the metrics rose 8 minutes after it
    assert top.matched_commit_ids == ("commit_1",)
    assert any("none of its commits' files or words appear in the new errors (log_1)" in r
               for r in suspects[1].reasons)


def test_without_findings_the_closer_deploy_still_wins_on_time():
    suspects = rank_suspects(make_pack(deploys=(CULPRIT, BYSTANDER)))
    assert suspects[0].deploy_id == "deploy_2"


def test_words_shared_with_errors_count_when_no_file_is_named():
    shared = deploy("deploy_1", -9, version="v2.3", commits=(
        commit("commit_1", "aaaaaaa1111111", "Set inventory_cache_ttl for the sale", files=("config/shop.yaml",)),))
    error = log("log_1", 0, "ERROR invalid configuration value for inventory_cache_ttl: must be positive")
    suspects = rank_suspects(_pack(deploys=(shared, BYSTANDER), logs=(error,)))
    assert suspects[0].deploy_id == "deploy_1"
    assert any(r.startswith("its commits share words with error templates log_1: cache, inventory")
               for r in suspects[0].reasons)
    assert correlate.strength(correlate.links(_pack(), shared, (error,))) == "medium"


def test_deploy_after_the_metric_onset_is_not_a_suspect():
    late = deploy("deploy_3", -2, version="v2.5")
    pack = _pack(deploys=(late,), metrics=(metric("metric_1", -10),), logs=())
    assert rank_suspects(pack) == ()


def test_another_services_deploy_is_a_suspect_when_errors_name_its_files():
    other = replace(CULPRIT, service="payments")
    assert [s.deploy_id for s in rank_suspects(_pack(deploys=(other,)))] == ["deploy_1"]
    unlinked = replace(other, commits=(commit("commit_1", "aaaaaaa1111111", "Refactor ledger"),))
    assert rank_suspects(_pack(deploys=(unlinked,))) == ()


def test_external_cause_clears_an_unrelated_deploy_and_names_the_category():
    expired = log("log_1", 0, "ERROR tls: x509: certificate has expired or is not yet valid", count=400)
    pack = _pack(deploys=(BYSTANDER,), logs=(expired,))
    suspects = rank_suspects(pack)
    assert standout(suspects) is None
    assert any("the errors point to certificate expiry (log_1)" in r for r in suspects[0].reasons)
    assert root_cause_category(pack) == "certificate"
    assert [(c.kind, c.key) for c in ranked_causes(pack)][:2] == [("category", "certificate"), ("deploy", "deploy_2")]


def test_quiet_observability_clears_a_deploy_that_stood_out_on_time_alone():
    pack = make_pack(deploys=(BYSTANDER,))
    assert standout(rank_suspects(pack)) is not None
    quiet = replace(pack, observed=True)
    suspects = rank_suspects(quiet)
    assert standout(suspects) is None
    assert "no metric change or new error followed it within 30 minutes" in suspects[0].reasons


def test_categories_follow_the_error_templates_and_metrics():
    samples = {
        "dns": "ERROR dial tcp: lookup payments.internal on 10.0.0.2:53: no such host",
        "dependency": "ERROR POST https://api.stripe.com/v1/charges failed: connection refused",
        "database": "ERROR could not obtain connection from pool within 30s",
        "memory": "java.lang.OutOfMemoryError: Java heap space",
        "traffic": "WARN rate limit exceeded for client 42",
        "certificate": "x509: certificate signed by unknown authority",
    }
    for key, text in samples.items():
        assert causes.classify(text) == key, text
    assert causes.classify("user signed in") is None
    surge = _pack(deploys=(), logs=(), metrics=(metric("metric_1", -1, series_name="http_requests_rate",
                                                       before=300, after=1200, unit="req/s"),))
    assert root_cause_category(surge) == "traffic"


def test_a_few_background_errors_do_not_make_a_category():
    noise = log("log_1", 5, "ERROR connection reset by peer", count=4)
    assert causes.dominant(_pack(deploys=(), metrics=(), logs=(noise,))) is None


def test_terms_split_identifiers():
    assert {"payment", "paymentclient", "charge", "card", "charge_card"} <= correlate.terms(
        "PaymentClient.charge_card failed")
    assert "error" not in correlate.terms("ERROR error errors")
