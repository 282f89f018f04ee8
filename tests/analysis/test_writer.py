"""The built-in drafting engine: every section grounded in the evidence pack, nothing invented."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from blametrail.analysis.suspects import Suspect, rank_suspects, standout
from blametrail.analysis.writer import ENGINE_NAME, NOT_ESTABLISHED, write_postmortem
from blametrail.engines.sections import Sections

from .factories import T0, at, bad_deploy_pack, commit, deploy, make_pack, status, update


def _cited_in_text(draft: dict) -> set[str]:
    text = json.dumps(draft, ensure_ascii=False)
    return {i.strip() for group in re.findall(r"evidence: ([^)]+)\)", text) for i in group.split(",")}


def test_engine_name_is_builtin():
    assert ENGINE_NAME == "builtin"


def test_duration_is_whole_minutes_rounded_half_up():
    assert write_postmortem(make_pack(resolved_after=23))["customer_impact"]["duration_minutes"] == 23
    assert write_postmortem(make_pack(resolved_after=23.5))["customer_impact"]["duration_minutes"] == 24
    assert write_postmortem(make_pack(resolved_after=23.49))["customer_impact"]["duration_minutes"] == 23
    unresolved = write_postmortem(make_pack(resolved_after=None, resolved_by=None))
    assert unresolved["customer_impact"]["duration_minutes"] is None
    assert any("no resolution time" in note.lower() for note in unresolved["what_went_poorly"])


def test_affected_services_are_the_incidents_sorted_and_deduplicated():
    draft = write_postmortem(make_pack(services=("payments", "checkout", "payments")))
    assert draft["customer_impact"]["affected_services"] == ["checkout", "payments"]
    # breadth alone is not a contributing factor (it counts towards the severity instead)
    assert not any("services were affected" in factor for factor in draft["contributing_factors"])


def test_impact_description_quotes_updates_and_invents_no_numbers():
    pack = make_pack(updates=(update("upd_1", 2, "About 30% of customers get 502s on payment."),))
    description = write_postmortem(pack)["customer_impact"]["description"]
    assert "“About 30% of customers get 502s on payment.” (evidence: upd_1)" in description
    assert set(re.findall(r"\d+", description)) <= {"30", "502", "23", "1"}


def test_given_severity_is_kept_even_when_words_suggest_otherwise():
    draft = write_postmortem(make_pack(severity="SEV-1", title="Search slightly degraded"))
    assert draft["severity"] == "SEV-1"
    assert "inferred" not in draft["confidence"]["reason"] + draft["summary"]


def test_severity_is_inferred_from_impact_and_says_so():
    outage = write_postmortem(make_pack(severity=None, title="Checkout down", resolved_after=20))
    assert outage["severity"] == "SEV-2"
    assert "Severity SEV-2 was inferred from the written definitions: a customer-facing outage for 20 minutes" in (
        outage["confidence"]["reason"])
    assert "Rated SEV-2 by the severity definitions, as none was recorded." in outage["summary"]
    everyone = write_postmortem(make_pack(severity=None, title="Login failing for all customers"))
    assert everyone["severity"] == "SEV-1"
    degraded = write_postmortem(make_pack(severity=None, title="Search latency degraded", resolved_after=20))
    assert degraded["severity"] == "SEV-3"
    minor = write_postmortem(make_pack(severity=None, title="Flaky admin export", resolved_after=5))
    assert minor["severity"] == "SEV-4"
    long_outage = write_postmortem(make_pack(severity=None, title="API outage", resolved_after=95))
    assert long_outage["severity"] == "SEV-1"


def test_output_validates_against_sections_with_utc_timestamps():
    draft = write_postmortem(bad_deploy_pack())
    Sections.model_validate(draft)
    assert draft["timeline"] and all(item["at"].endswith("Z") for item in draft["timeline"])
    assert set(draft) == set(Sections.model_fields) - {"extra"}  # the built-in writer has no extra sections to write


def test_timeline_is_chronological_and_cites_existing_evidence():
    pack = bad_deploy_pack()
    timeline = write_postmortem(pack)["timeline"]
    times = [item["at"] for item in timeline]
    assert times == sorted(times)
    cited = {i for item in timeline for i in item["evidence"]}
    assert cited <= pack.evidence_ids()
    assert {"upd_1", "upd_2", "upd_3", "st_1", "st_2", "deploy_4", "commit_9", "deploy_5"} <= cited
    sources = {item["evidence"][0]: item["source"] for item in timeline if item["evidence"]}
    assert sources["upd_2"] == "update" and sources["deploy_4"] == "deploy" and sources["st_2"] == "status"
    assert timeline[0]["evidence"] == ["deploy_3"]
    assert timeline[-1]["evidence"] == ["st_2"]


def test_every_citation_in_the_prose_exists_in_the_pack():
    for pack in (bad_deploy_pack(), bad_deploy_pack(updates=()), make_pack(updates=(), deploys=())):
        draft = write_postmortem(pack)
        assert _cited_in_text(draft) <= pack.evidence_ids()


def test_incident_start_is_marked_when_it_precedes_the_open_status():
    pack = make_pack(statuses=(status("st_1", 25, "open"),), resolved_after=None, resolved_by=None)
    timeline = write_postmortem(pack)["timeline"]
    assert timeline[0] == {"at": "2024-05-01T10:00:00Z", "source": "status",
                           "description": "Incident started: Checkout errors", "evidence": []}
    assert timeline[1]["evidence"] == ["st_1"]


def test_long_update_bodies_are_truncated_in_the_timeline():
    pack = make_pack(updates=(update("upd_1", 5, "word " * 200),))
    entry = next(item for item in write_postmortem(pack)["timeline"] if item["evidence"] == ["upd_1"])
    assert entry["description"].endswith("…")
    assert len(entry["description"]) <= len("Update from sam: ") + 280


def test_bad_deploy_just_before_start_is_named_with_its_sha():
    draft = write_postmortem(bad_deploy_pack(updates=(), description="Payment client calls fail at checkout."))
    cause = draft["root_cause"]
    assert "deploy v2.3 of checkout" in cause
    assert "a change in commit abc1234" in cause
    assert "Lower payment client timeout to 200ms" in cause
    assert "(evidence: deploy_4, commit_9)" in cause
    assert not cause.startswith(NOT_ESTABLISHED)
    assert draft["confidence"]["level"] == "medium"
    assert "deploy_4" in draft["confidence"]["reason"]


def test_update_stating_the_cause_is_used_and_cited():
    pack = make_pack(updates=(
        update("upd_1", 4, "Errors on checkout, investigating."),
        update("upd_2", 15, "The cause was an expired TLS certificate on the payment gateway."),
    ))
    draft = write_postmortem(pack)
    assert ("“The cause was an expired TLS certificate on the payment gateway.” (evidence: upd_2)"
            in draft["root_cause"])
    assert draft["confidence"]["level"] == "medium"
    assert "upd_2" in draft["confidence"]["reason"]
    assert "expired TLS certificate" in draft["summary"]


def test_uncertain_cause_sentences_are_not_taken_as_the_cause():
    pack = make_pack(updates=(update("upd_1", 4, "Root cause still unknown, investigating."),))
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)


def test_stated_cause_agreeing_with_top_suspect_gives_high_confidence():
    draft = write_postmortem(bad_deploy_pack())
    assert "(evidence: upd_3)" in draft["root_cause"]
    assert "This agrees with the top suspect" in draft["root_cause"]
    assert "(evidence: deploy_4, commit_9)" in draft["root_cause"]
    assert draft["confidence"]["level"] == "high"
    assert "upd_3" in draft["confidence"]["reason"] and "deploy_4" in draft["confidence"]["reason"]


def test_rollback_is_detected_as_going_well():
    well = write_postmortem(bad_deploy_pack())["what_went_well"]
    assert "A rollback was carried out, first mentioned at 2024-05-01 10:12 UTC (evidence: upd_2)." in well
    assert "Impact was mitigated 12 minutes after the start (evidence: upd_2)." in well
    assert "The first human update was posted 3 minutes after the incident started (evidence: upd_1)." in well


def test_rollback_named_in_update_ranks_that_deploy_first():
    suspects = rank_suspects(bad_deploy_pack())
    assert isinstance(suspects[0], Suspect)
    assert suspects[0].deploy_id == "deploy_4"
    assert suspects[0].commit_ids[0] == "commit_9"
    assert "update upd_2 describes rolling back checkout" in suspects[0].reasons
    assert suspects[0].update_ids == ("upd_2",)
    assert suspects[1].deploy_id == "deploy_3" and suspects[1].score < 0.4  # v2.2 is the rollback target
    assert standout(suspects) == suspects[0]


def test_no_updates_and_no_deploys_is_not_established_with_low_confidence():
    draft = write_postmortem(make_pack(updates=(), deploys=()))
    assert draft["root_cause"].startswith("Root cause not established from the evidence.")
    assert "no human updates were posted" in draft["root_cause"]
    assert draft["confidence"]["level"] == "low"
    assert "would raise confidence" in draft["confidence"]["reason"]
    find = next(item for item in draft["action_items"] if item["title"].startswith("Find and write down the root"))
    assert find["title"] == "Find and write down the root cause (no human updates were posted)"
    assert find["priority"] == "high" and find["kind"] == "prevent" and find["suggested_owner"] is None


def test_deploy_of_an_unrelated_service_is_not_blamed():
    other = deploy("deploy_9", -2, service="search", version="v9.1",
                   commits=(commit("commit_90", "fedcba9876543", "Tune search ranking", author="carol"),))
    pack = make_pack(deploys=(other,), updates=(update("upd_1", 3, "Checkout errors for customers."),))
    assert rank_suspects(pack) == ()
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)
    assert "deploy_9" not in json.dumps(draft) and "fedcba9" not in json.dumps(draft)


def test_unrelated_service_deploy_is_a_suspect_only_when_an_update_names_it():
    other = deploy("deploy_9", -2, service="search", version="v9.1",
                   commits=(commit("commit_90", "fedcba9876543", "Tune search ranking", author="carol"),))
    pack = make_pack(deploys=(other,), updates=(update("upd_1", 6, "Reverting fedcba9 fixed checkout."),))
    assert [s.deploy_id for s in rank_suspects(pack)] == ["deploy_9"]


def test_deploy_after_start_is_remediation_not_a_suspect():
    late = deploy("deploy_7", 5, version="v2.4", commits=(commit("commit_70", "1234567abcdef", "Hotfix"),))
    draft = write_postmortem(make_pack(deploys=(late,)))
    assert rank_suspects(make_pack(deploys=(late,))) == ()
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)
    entry = next(item for item in draft["timeline"] if item["source"] == "deploy")
    assert entry["evidence"] == ["deploy_7"] and "not a suspect" in entry["description"]


def test_close_suspects_do_not_stand_out():
    pack = make_pack(deploys=(deploy("deploy_1", -5, version="v1.1"), deploy("deploy_2", -8, version="v1.0")))
    draft = write_postmortem(pack)
    assert standout(rank_suspects(pack)) is None
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)
    assert "no suspect deploy stands out (deploy_1 scored" in draft["root_cause"]


def test_rollback_that_did_not_help_clears_the_deploy():
    pack = bad_deploy_pack(updates=(update("upd_1", 8, "Rolled back checkout v2.3 but it didn't help."),),
                           deploys=(bad_deploy_pack().deploys[1],))
    suspects = rank_suspects(pack)
    assert "update upd_1 says rolling back checkout did not help" in suspects[0].reasons
    assert standout(suspects) is None
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith(NOT_ESTABLISHED)
    assert any("did not help" in note and "upd_1" in note for note in draft["what_went_poorly"])


def test_determinism_same_input_same_output():
    pack = bad_deploy_pack()
    assert write_postmortem(pack) == write_postmortem(pack)
    assert json.dumps(write_postmortem(pack)) == json.dumps(write_postmortem(bad_deploy_pack()))


def test_naive_datetimes_are_read_as_utc():
    pack = bad_deploy_pack()
    naive = replace(pack, incident=replace(pack.incident, started_at=T0.replace(tzinfo=None)),
                    updates=tuple(replace(u, at=u.at.replace(tzinfo=None)) for u in pack.updates))
    assert write_postmortem(naive) == write_postmortem(pack)


def test_action_items_are_specific_grouped_and_owned_by_the_services_team():
    items = write_postmortem(bad_deploy_pack(), service_owners={"checkout": "team-checkout"})["action_items"]
    assert [item["kind"] for item in items] == ["prevent", "prevent"]
    rework, test = items
    assert rework["title"] == ("Rework commit abc1234 (“Lower payment client timeout to 200ms”) before it goes back "
                               "into checkout")
    assert rework["evidence"] == ["deploy_4", "commit_9", "upd_3"] and rework["priority"] == "high"
    assert test["title"].startswith("Add a test for src/checkout/payment_client.py covering the stated cause: the "
                                    "payment client timeout was lowered in v2.3")
    assert all(item["suggested_owner"] == "team-checkout" for item in items)
    assert not any("regression test for the change in commit" in item["title"] for item in items)


def test_no_commit_author_or_responder_is_ever_a_suggested_owner():
    """Blameless by construction: owners come from the service-owner map, never from who wrote or said what."""
    packs = [bad_deploy_pack(), bad_deploy_pack(updates=()), make_pack(updates=(), deploys=()),
             bad_deploy_pack(severity=None, resolved_after=130,
                             updates=(update("upd_1", 40, "Restarted pods, no effect."),
                                      update("upd_2", 120, "Rolled back checkout v2.3, error rate dropping.")))]
    people = {"alice", "bob", "sam"}
    for pack in packs:
        for owners in ({}, {"checkout": "team-checkout"}):
            items = write_postmortem(pack, service_owners=owners)["action_items"]
            assert items
            for item in items:
                assert item["suggested_owner"] in (None, owners.get("checkout")), item
                assert item["suggested_owner"] not in people, item
    items = write_postmortem(bad_deploy_pack(), service_owners={"payments": "team-payments"})["action_items"]
    assert {item["suggested_owner"] for item in items} == {None}  # checkout has no owner in the map


def test_two_services_with_one_team_share_the_owner_and_two_teams_leave_it_empty():
    pack = make_pack(services=("checkout", "payments"), updates=(), deploys=())
    one = write_postmortem(pack, service_owners={"checkout": "payments-team", "payments": "payments-team"})
    assert {item["suggested_owner"] for item in one["action_items"]} == {"payments-team"}
    two = write_postmortem(pack, service_owners={"checkout": "a-team", "payments": "b-team"})
    assert {item["suggested_owner"] for item in two["action_items"]} == {None}


def test_late_opening_by_a_person_is_detection_without_alerts_and_gets_a_detect_item():
    pack = make_pack(
        resolved_by="monitor:api-health",
        statuses=(status("st_1", 20, "open", actor="kim"), status("st_2", 40, "resolved", actor="monitor:api-health")),
        resolved_after=40,
        updates=(update("upd_1", 22, "Checkout returns 502s for card payments.", author="kim"),
                 update("upd_2", 30, "Still bad.", author="kim"), update("upd_3", 31, "Checking DNS.", author="lee")),
    )
    draft = write_postmortem(pack, service_owners={"checkout": "team-checkout"})
    assert "Monitor api-health saw it recover and resolved it at 10:40." in draft["summary"]
    assert "No alert or monitor reported it; kim opened it by hand (evidence: st_1)." in draft["what_went_poorly"]
    assert draft["contributing_factors"] == [
        "The impact went unnoticed for 20 minutes: it started at 10:00, and the incident was opened by kim at 10:20 "
        "(evidence: st_1)."]
    alerting = next(item for item in draft["action_items"] if item["kind"] == "detect")
    assert alerting["title"] == ("Add an alert or monitor on checkout for the symptom people reported first: "
                                 "“Checkout returns 502s for card payments.”")
    assert alerting["suggested_owner"] == "team-checkout" and alerting["evidence"] == ["st_1", "upd_1"]
    assert all(item["suggested_owner"] not in ("kim", "lee") for item in draft["action_items"])


def test_response_numbers_are_computed_from_the_updates():
    pack = make_pack(resolved_after=120, updates=(
        update("upd_1", 25, "Investigating elevated errors."),
        update("upd_2", 30, "Restarted the pods, no effect."),
        update("upd_3", 95, "Fix deployed, errors recovered."),
    ))
    draft = write_postmortem(pack)
    poorly = draft["what_went_poorly"]
    assert "The first update came 25 minutes after the start (evidence: upd_1)." in poorly
    assert "There was no update for 65 minutes, from 10:30 to 11:35 (evidence: upd_2, upd_3)." in poorly
    assert "An attempt did not help: “Restarted the pods, no effect.” (evidence: upd_2)." in poorly
    assert ("The impact lasted 95 minutes before it was mitigated, counted from the start at 10:00 (evidence: upd_3)."
            in poorly)
    titles = {item["title"]: item for item in draft["action_items"]}
    assert titles["Post the first update within 15 minutes of the start (this time: 25)"]["kind"] == "mitigate"
    assert titles["Note in the runbook that this did not help: “Restarted the pods, no effect.”"]["evidence"] == [
        "upd_2"]


def test_root_cause_is_blameless():
    for pack in (bad_deploy_pack(), bad_deploy_pack(updates=(), description="Payment client errors")):
        draft = write_postmortem(pack)
        cause = draft["root_cause"]
        assert "a change in commit abc1234" in cause
        assert cause.count("alice") == cause.count("authored by alice")  # attribution only, never the subject
        for phrase in ("alice broke", "alice caused", "by alice's", "fault", "blame", "mistake", "careless"):
            assert phrase not in cause.lower()
        assert "alice" not in draft["summary"].split("authored by alice")[0]


def test_summary_says_what_when_how_long_where_why_and_who():
    summary = write_postmortem(bad_deploy_pack())["summary"]
    assert summary == (
        "Checkout errors: checkout was affected for 23 minutes on 2024-05-01, 10:00–10:23 UTC. The cause, in the "
        "responders' words: “the payment client timeout was lowered in v2.3, so slow payment calls failed”. checkout "
        "was rolled back to v2.2 at 10:11, and sam resolved it at 10:23.")


def test_window_bounds_deploys():
    early = deploy("deploy_1", -300, version="v1.9")  # before the 120-minute lookback
    pack = make_pack(deploys=(early,))
    assert rank_suspects(pack) == ()
    assert all(item["source"] != "deploy" for item in write_postmortem(pack)["timeline"])
    assert at(-300) < pack.window_start


def test_stated_cause_that_disagrees_with_the_top_suspect_is_medium():
    pack = bad_deploy_pack(description="Payment client errors", updates=(
        update("upd_1", 10, "Root cause was an expired TLS certificate on the load balancer."),))
    draft = write_postmortem(pack)
    assert "but the updates do not tie it to the stated cause" in draft["root_cause"]
    assert draft["confidence"]["level"] == "medium"
    assert "do not clearly agree" in draft["confidence"]["reason"]


def test_suspect_named_by_a_rollback_update_gives_high_confidence_without_a_cause_sentence():
    pack = bad_deploy_pack(updates=(update("upd_1", 8, "Rolled back checkout v2.3, errors recovering."),))
    draft = write_postmortem(pack)
    assert draft["root_cause"].startswith("The most likely trigger is deploy v2.3 of checkout")
    assert "No update confirms it" not in draft["root_cause"]
    assert draft["confidence"]["level"] == "high"
    assert "updates upd_1 point at it" in draft["confidence"]["reason"]
