"""The evidence pack from stored data: recent incidents on the same services, monitors, later deploys, write times."""

from __future__ import annotations

from datetime import timedelta

from blametrail import db
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import DeployCreate
from blametrail.evidence.pack import AFTER_RESOLUTION, build_pack
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.monitors.models import Monitor
from tests.conftest import START


def _incident(s, actor, title, services, started, resolved=None, now=START):
    inc = incidents.create(session=s, actor=actor, now=now, data=IncidentCreate(
        title=title, services=services, started_at=started, severity="SEV-2"))
    if resolved is not None:
        incidents.resolve(session=s, incident=inc, now=now, resolved_at=resolved, by_label=actor.label,
                          by_user_id=actor.user_id)
    return inc


def _deploy(s, actor, service, version, at):
    deploys.create(session=s, actor=actor, now=START, data=DeployCreate(
        service=service, environment="production", version=version, deployed_at=at, commits=[]))


def _monitor(s, org_id, name, service, enabled=True):
    s.add(Monitor(org_id=org_id, name=name, url="https://example.com/health", service=service, enabled=enabled,
                  next_check_at=START, created_at=START, updated_at=START))


def test_recent_incidents_on_the_same_services_only_from_this_organization(factory, rt):
    owner = factory.team()["owner"].actor
    stranger = factory.team()["owner"].actor
    start = START - timedelta(hours=3)
    with db.transaction(rt.factory) as s:
        recent = _incident(s, owner, "Checkout 502s", ["checkout"], start - timedelta(days=5), start - timedelta(days=5))
        _incident(s, owner, "Old checkout outage", ["checkout"], start - timedelta(days=45), start - timedelta(days=45))
        _incident(s, owner, "Search slow", ["search"], start - timedelta(days=2), start - timedelta(days=2))
        _incident(s, stranger, "Their checkout", ["checkout"], start - timedelta(days=1), start - timedelta(days=1))
        current = _incident(s, owner, "Checkout errors", ["checkout", "payments"], start, start + timedelta(minutes=30))
        _incident(s, owner, "A later checkout one", ["checkout"], start + timedelta(hours=1))
        current_id, recent_id = current.id, recent.id
    with db.transaction(rt.factory) as s:
        pack = build_pack(session=s, incident=s.get(Incident, current_id), lookback_minutes=120, now=START)
    assert [(p.id, p.title, p.services) for p in pack.prior_incidents] == [
        (f"inc_{recent_id}", "Checkout 502s", ("checkout",))]
    assert f"inc_{recent_id}" in pack.evidence_ids()
    assert pack.to_json()["prior_incidents"][0]["title"] == "Checkout 502s"


def test_monitors_on_the_services_and_the_write_time_of_the_opening(factory, rt):
    team = factory.team()
    owner = team["owner"].actor
    start = START - timedelta(hours=2)
    with db.transaction(rt.factory) as s:
        _monitor(s, owner.org_id, "checkout-health", "checkout")
        _monitor(s, owner.org_id, "search-health", "search")
        _monitor(s, factory.team()["owner"].actor.org_id, "their-checkout", "checkout")
        # opened at START (now) but back-dated to two hours earlier, then resolved
        inc = _incident(s, owner, "Checkout errors", ["checkout"], start, now=START)
        incidents.resolve(session=s, incident=inc, now=START, resolved_at=START, by_label=owner.label,
                          by_user_id=owner.user_id)
        iid = inc.id
    with db.transaction(rt.factory) as s:
        pack = build_pack(session=s, incident=s.get(Incident, iid), lookback_minutes=120, now=START)
    assert [(m.name, m.service) for m in pack.monitors] == [("checkout-health", "checkout")]
    assert pack.incident.source == "manual"
    opened = next(st for st in pack.status_changes if st.status == "open")
    assert opened.at.replace(tzinfo=None) == start.replace(tzinfo=None)
    assert opened.recorded_at is not None and opened.recorded_at.replace(tzinfo=None) == START.replace(tzinfo=None)


def test_deploys_after_the_resolution_are_kept_for_a_day(factory, rt):
    owner = factory.team()["owner"].actor
    start = START - timedelta(days=3)
    resolved = start + timedelta(minutes=40)
    with db.transaction(rt.factory) as s:
        _deploy(s, owner, "checkout", "v1.0", start - timedelta(minutes=10))
        _deploy(s, owner, "checkout", "v1.1-fix", resolved + timedelta(hours=2))
        _deploy(s, owner, "checkout", "v1.2", resolved + AFTER_RESOLUTION + timedelta(hours=1))
        _deploy(s, owner, "search", "v9", resolved + timedelta(hours=1))
        inc = _incident(s, owner, "Checkout errors", ["checkout"], start, resolved)
        incidents.add_update(session=s, actor=owner, incident=inc, now=START,
                             data=UpdateCreate(body="Follow-up: the fix is deployed.", at=resolved + timedelta(hours=3)))
        iid = inc.id
    with db.transaction(rt.factory) as s:
        pack = build_pack(session=s, incident=s.get(Incident, iid), lookback_minutes=120, now=START)
    assert [d.version for d in pack.deploys] == ["v1.0", "v1.1-fix"]
    from blametrail.analysis.writer import write_postmortem

    later = [row for row in write_postmortem(pack)["timeline"] if row.get("after_resolution")]
    assert [row["description"] for row in later] == [
        "After resolution: Deploy of checkout v1.1-fix to production (0 commits)",
        f"After resolution: Update from {owner.label}: Follow-up: the fix is deployed."]
