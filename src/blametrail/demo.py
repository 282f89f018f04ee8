"""Demo data: a realistic organization with resolved incidents, their evidence and their postmortems."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import CommitIn, DeployCreate
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.integrations import service as connections
from blametrail.integrations.base import Limits
from blametrail.integrations.schemas import ConnectionCreate
from blametrail.jobs import generation
from blametrail.orgs import service as orgs
from blametrail.orgs.models import MonthlyUsage, Organization
from blametrail.orgs.service import Actor
from blametrail.postmortems import service as postmortems
from blametrail.scenarios import generator
from blametrail.scenarios.evaluate import record
from blametrail.scenarios.generator import LOOKBACK, METRICS

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo-password"
PEOPLE = [("owner@demo.blametrail.dev", "owner", "Dana Owner"), ("admin@demo.blametrail.dev", "admin", "Ari Admin"),
          ("member@demo.blametrail.dev", "member", "Sam Member"), ("viewer@demo.blametrail.dev", "viewer", "Vic Viewer")]
# Generated incidents (see blametrail.scenarios) shown next to the hand-written one: (fault, days ago).
SCENARIOS = (("bad_deploy", 2), ("certificate_expiry", 4), ("no_culprit", 6))
_HAND_WRITTEN_SERVICES = frozenset({"checkout", "payments", "search"})


def _login_help() -> str:
    lines = [f"Demo organization '{DEMO_SLUG}' is ready. Log in with any of (password: {DEMO_PASSWORD}):"]
    lines += [f"  {email:32} {role}" for email, role, _ in PEOPLE]
    return "\n".join(lines)


def seed_demo(rt) -> str:
    """Create the demo organization once (idempotent) and draft its postmortems, which do not count against its
    monthly quota; return how to log in."""
    now = rt.clock.now().replace(second=0)
    with db.transaction(rt.factory) as session:
        if session.scalar(select(Organization.id).where(Organization.slug == DEMO_SLUG)):
            return _login_help()
        org = orgs.create_org(session=session, slug=DEMO_SLUG, name="Demo Shop", plan="pro", now=now)
        members = [orgs.create_user(session=session, email=e, org=org, role=r, password=DEMO_PASSWORD, now=now, name=n)
                   for e, r, n in PEOPLE]
        owner, member = orgs.actor_for(members[0]), orgs.actor_for(members[2])
        start = now - timedelta(hours=3)
        deploys.create(session=session, actor=member, now=now, data=DeployCreate(
            service="search", environment="production", version="v5.2.0", deployed_at=start - timedelta(hours=1, minutes=20),
            commits=[CommitIn(sha="9f1c2ab7d4e5", author="Lee Search", message="Tune search result cache size",
                              files=["search/cache.py"], committed_at=start - timedelta(hours=2))]))
        deploys.create(session=session, actor=member, now=now, data=DeployCreate(
            service="checkout", environment="production", version="v2.14.0", deployed_at=start - timedelta(minutes=6),
            commits=[
                CommitIn(sha="4e7a91c0b2d3", author="Jordan Payments", committed_at=start - timedelta(hours=1),
                         message="Switch payment client to pooled connections (max 5 per pod)",
                         files=["checkout/payments/client.py", "checkout/settings.py"]),
                CommitIn(sha="b81d3f2e6a90", author="Riley Frontend", committed_at=start - timedelta(hours=2),
                         message="Fix typo on the order confirmation page", files=["checkout/templates/confirm.html"]),
            ]))
        inc = incidents.create(session=session, actor=member, now=now, data=IncidentCreate(
            title="Checkout failing with 502s for card payments", severity="SEV-2", services=["checkout", "payments"],
            started_at=start, description="Card payments fail at the last checkout step; PayPal unaffected."))
        for minutes, actor, body in [
            (4, member, "Seeing ~40% of card payments fail with 502 from checkout. Investigating."),
            (11, member, "Payment client logs show 'connection pool exhausted' since the checkout v2.14.0 deploy."),
            (18, owner, "Rolling back checkout to v2.13.2."),
            (27, owner, "Rollback complete; error rate back to baseline. Root cause: the pooled payment client "
                        "allowed only 5 connections per pod, too few for peak traffic."),
        ]:
            incidents.add_update(session=session, actor=actor, incident=inc, now=now,
                                 data=UpdateCreate(body=body, at=start + timedelta(minutes=minutes)))
        deploys.create(session=session, actor=owner, now=now, data=DeployCreate(
            service="checkout", environment="production", version="v2.13.2", deployed_at=start + timedelta(minutes=21),
            commits=[]))
        postmortems.resolve_incident(session=session, incident=inc, now=now, resolved_at=start + timedelta(minutes=34),
                                     by_label=owner.label, by_user_id=owner.user_id)
        pm_id = postmortems.find(session=session, org_id=org.id, incident_id=inc.id).id
        scenario_pm_ids = _seed_scenarios(session, org_id=org.id, owner=owner, member=member, box=rt.secret_box,
                                          now=now)
        # why: the demo's own postmortems are sample data, not the organization's work: they must not take 4 of the
        # plan's monthly postmortems (the org is new, so every usage row so far is the seed's)
        session.execute(delete(MonthlyUsage).where(MonthlyUsage.org_id == org.id))
        # why: drafted right here so the demo is complete before the server starts; the live summaries' refreshes
        # stay queued (dropping them left every demo summary "Updating…" for good)
        session.info["deferred"] = [job for job in session.info.get("deferred", [])
                                    if job[0] != postmortems.GENERATE_TASK]
    generation.run_generation(factory=rt.factory, pm_id=pm_id, choose_engine=rt.engine_for_org, clock=rt.clock.now,
                              lookback_minutes=rt.settings.lookback_minutes)
    for scenario_pm_id in scenario_pm_ids:  # their metrics and logs come from the demo's fake connection
        generation.run_generation(factory=rt.factory, pm_id=scenario_pm_id, choose_engine=rt.engine_for_org,
                                  clock=rt.clock.now, lookback_minutes=rt.settings.lookback_minutes,
                                  box=rt.secret_box, limits=Limits.from_settings(rt.settings))
    return _login_help()


def demo_scenarios(now: datetime) -> list:
    """Return the generated demo incidents, moved to end a few days before now, on services of their own."""
    used, out = set(_HAND_WRITTEN_SERVICES), []
    for index, (fault, days_ago) in enumerate(SCENARIOS):
        s = generator.scenario(fault, index=index, tag="", avoid=frozenset(used))
        used |= set(s.services)
        day = now.date() - timedelta(days=days_ago)
        out.append(generator.shifted(s, timedelta(days=(day - s.started_at.date()).days)))
    return out


def _seed_scenarios(session: Session, *, org_id: int, owner: Actor, member: Actor, box, now: datetime) -> list[int]:
    """Record the generated incidents and a fake connection serving their metrics and logs; return their
    postmortem ids (queued, drafted by the caller)."""
    scenarios = demo_scenarios(now)
    series, lines, services = [], [], set()
    for s in scenarios:
        start, end = s.started_at - LOOKBACK - timedelta(minutes=10), s.resolved_at + timedelta(minutes=10)
        series += [{"name": m.name, "service": m.service, "unit": m.unit,
                    "points": [[t.isoformat(), v] for t, v in m.points if start <= t <= end]} for m in s.series]
        lines += [{"at": g.at.isoformat(), "service": g.service, "text": g.text,
                   "labels": {"signal": "logs", "level": g.level}} for g in s.logs if start <= g.at <= end]
        services |= set(s.services)
    covered = sorted(services)  # why: only these incidents read it, so the hand-written one keeps its own evidence
    signals = [{"name": name, "kind": "metric", "query": f'{name}{{service="$service"}}', "services": covered,
                "unit": unit} for name, unit in METRICS.items()]
    signals.append({"name": "logs", "kind": "log", "query": '{service="$service"}', "services": covered})
    connections.create(session=session, actor=owner, box=box, now=now, allow_fake=True, data=ConnectionCreate(
        name="Demo metrics and logs (fake)", provider="fake", signals=signals,
        options={"series": series, "logs": lines}))
    pm_ids = []
    for s in scenarios:
        inc, _ = record(session, member, s, now, responders=(member, owner), draft=True)
        pm_ids.append(postmortems.find(session=session, org_id=org_id, incident_id=inc.id).id)
    return pm_ids
