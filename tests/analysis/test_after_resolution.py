"""The incident's timeline ends at its resolution; later events sit in a clearly marked part at the end."""

from __future__ import annotations

from dataclasses import replace

from blametrail.analysis.evidence import AlertEvidence
from blametrail.analysis.timeline import AFTER_RESOLUTION, after_resolution
from blametrail.analysis.writer import write_postmortem
from blametrail.engines.sections import Sections, dump

from .factories import at, bad_deploy_pack, deploy, make_pack, update


def _pack():
    fix = deploy("deploy_8", 120, version="v2.4")  # the fix, shipped two hours after the resolution at +23
    late_alert = AlertEvidence("alert_2", at(30), "CheckoutErrors", "resolved", service="checkout")
    return replace(bad_deploy_pack(updates=(
        update("upd_1", 3, "Customers see 502 errors at checkout."),
        update("upd_2", 12, "Rolled back checkout v2.3 to v2.2, error rate dropping."),
        update("upd_3", 100, "Follow-up: fix for the timeout merged."),
    ), deploys=(*bad_deploy_pack().deploys, fix)), alerts=(late_alert,))


def test_events_after_the_resolution_are_marked_and_come_last():
    timeline = write_postmortem(_pack())["timeline"]
    later = [row for row in timeline if row.get("after_resolution")]
    assert [row["evidence"][0] for row in later] == ["alert_2", "upd_3", "deploy_8"]
    assert all(row["description"].startswith(AFTER_RESOLUTION) for row in later)
    assert later[-1]["description"] == "After resolution: Deploy of checkout v2.4 to production (0 commits)"
    assert timeline[-len(later):] == later  # the marked part is the end of the timeline
    earlier = timeline[:-len(later)]
    assert not any("after_resolution" in row or row["description"].startswith(AFTER_RESOLUTION) for row in earlier)
    assert earlier[-1]["evidence"] == ["st_2"]  # the incident's own timeline ends at its resolution


def test_later_updates_do_not_count_in_the_response_numbers():
    draft = write_postmortem(_pack())
    assert not any("no update for" in note for note in draft["what_went_poorly"])  # no 88-minute "gap"
    assert "Responders posted" not in " ".join(draft["what_went_well"])  # only 2 updates during the incident


def test_the_rule_and_the_schema_agree():
    pack = _pack()
    assert after_resolution(pack, at(24)) and not after_resolution(pack, at(23))
    assert not after_resolution(make_pack(resolved_after=None, resolved_by=None), at(500))
    stored = dump(Sections.model_validate(write_postmortem(pack)))
    assert [row.get("after_resolution") for row in stored["timeline"]][-3:] == [True, True, True]
    assert all("after_resolution" not in row for row in stored["timeline"][:-3])  # absent (false) elsewhere
