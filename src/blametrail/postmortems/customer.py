"""The customer-facing version of a published postmortem: impact, what happened, what we are changing.

Made from the latest published version (never from unpublished text), with internal details redacted
(analysis/redact.py: people, hosts, commits, evidence ids, the organization's services and teams); what was taken
out is kept beside it so a person reviews the removals before publishing. It is shown to the public — no sign-in —
at an unguessable URL, and only while the organization allows public postmortems (an owner's setting, off by
default). Members edit the text; owners and admins make it public or withdraw it.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.analysis.redact import Redactor
from blametrail.errors import InvalidState, NotFound, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.incidents.models import TimelineEntry
from blametrail.orgs import service as orgs
from blametrail.orgs import templates
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import CustomerVersion

FIELDS = ("impact", "what_happened", "what_we_are_changing")
MAX_TEXT = 10_000
MAX_CHANGES = 8


def find(*, session: Session, org_id: int, incident_id: int) -> CustomerVersion | None:
    return session.scalar(select(CustomerVersion).where(CustomerVersion.org_id == org_id,
                                                        CustomerVersion.incident_id == incident_id))


def get_or_404(*, session: Session, org_id: int, incident_id: int) -> CustomerVersion:
    incidents.get_or_404(session=session, org_id=org_id, incident_id=incident_id)
    row = find(session=session, org_id=org_id, incident_id=incident_id)
    if row is None:
        raise NotFound(f"Incident {incident_id} has no customer-facing version yet; make one from the published "
                       "postmortem.")
    return row


def _sentences(text: str, limit: int) -> str:
    parts = re.split(r"(?<=[.!?])\s+", (text or "").strip())
    return " ".join(p for p in parts[:limit] if p)


def _redactor(session: Session, *, org_id: int, incident) -> Redactor:
    members = orgs.list_members(session=session, org_id=org_id)
    people = [m.user.name for m in members] + [m.user.email for m in members]
    people += list(session.scalars(select(TimelineEntry.author).where(TimelineEntry.incident_id == incident.id,
                                                                      TimelineEntry.author.is_not(None)).distinct()))
    owners = templates.service_owners(session, org_id)
    services = [s.service for s in incident.services] + list(owners)
    return Redactor(people=people, services=services, teams=list(owners.values()))


def draft_from(sections: dict, incident, redact: Redactor) -> dict:
    """Return the customer text for published sections: shorter than the postmortem, redacted."""
    impact = sections.get("customer_impact") or {}
    minutes = impact.get("duration_minutes")
    lead = redact(impact.get("description") or "")
    if minutes:
        lead = (lead + " " if lead else "") + f"The impact lasted about {minutes} minutes."
    happened = " ".join(filter(None, (redact(_sentences(sections.get("summary", ""), 3)),
                                      redact(_sentences(sections.get("root_cause", ""), 2)))))
    items = sections.get("action_items") or []
    order = {"prevent": 0, "detect": 1, "mitigate": 2}
    items = sorted(items, key=lambda i: (order.get(i.get("kind") or "", 3), {"high": 0, "medium": 1}.get(
        i.get("priority"), 2)))
    changes = [redact(i.get("title", "")) for i in items[:MAX_CHANGES]]
    return {"impact": lead or f"Some customers were affected by: {redact(incident.title)}.",
            "what_happened": happened,
            "what_we_are_changing": "\n".join(f"- {c}" for c in changes if c)}


def make(*, session: Session, actor: Actor, incident_id: int, now: datetime) -> CustomerVersion:
    """Make (or make again) the customer text from the latest published version; a public one stays public."""
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.POSTMORTEM_WRITE)
    published = postmortems.published_version(session=session, pm=pm)  # NotFound before the first publish
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    redact = _redactor(session, org_id=actor.org_id, incident=incident)
    content = draft_from(published.revision.sections, incident, redact)
    removed = [{"text": r.text, "reason": r.reason} for r in redact.removed]
    row = find(session=session, org_id=actor.org_id, incident_id=incident_id)
    if row is None:
        row = CustomerVersion(org_id=actor.org_id, incident_id=incident_id, public_token=secrets.token_urlsafe(24),
                              status="draft", created_at=now)
        session.add(row)
    row.content, row.removed, row.source_version = content, removed, published.version
    row.updated_by, row.updated_at = actor.label, now
    session.flush()
    return row


def edit(*, session: Session, actor: Actor, incident_id: int, data: dict, now: datetime) -> CustomerVersion:
    """Change the customer text (members and up); only the three fields, each at most MAX_TEXT characters."""
    row = get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.POSTMORTEM_WRITE)
    errors = [{"loc": ["body", k[:40]], "msg": f"unknown field; one of {', '.join(FIELDS)}"}
              for k in data if k not in FIELDS]
    for key in FIELDS:
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value):
            errors.append({"loc": ["body", key], "msg": f"text of at most {MAX_TEXT:,} characters"})
    if errors:
        raise ValidationFailed(f"{errors[0]['loc'][-1]}: {errors[0]['msg']}.", errors)
    if not any(data.get(k) is not None for k in FIELDS):
        raise ValidationFailed("Give at least one of " + ", ".join(FIELDS) + ".",
                               [{"loc": ["body"], "msg": "nothing to change"}])
    row.content = {**row.content, **{k: data[k].strip() for k in FIELDS if data.get(k) is not None}}
    row.updated_by, row.updated_at = actor.label, now
    session.flush()
    return row


def publish(*, session: Session, actor: Actor, incident_id: int, now: datetime) -> CustomerVersion:
    """Make the customer text public at its URL (owners and admins; the organization must allow it)."""
    row = get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.PUBLISH)
    if not orgs.get_org(session=session, org_id=actor.org_id).public_postmortems:
        raise InvalidState("Public postmortems are turned off for this organization; an owner turns them on in "
                           "Organization → Settings.")
    row.status, row.published_at, row.updated_by, row.updated_at = "public", now, actor.label, now
    session.flush()
    return row


def withdraw(*, session: Session, actor: Actor, incident_id: int, now: datetime) -> CustomerVersion:
    """Take the customer text off its public URL (owners and admins); it can be published again."""
    row = get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.PUBLISH)
    row.status, row.updated_by, row.updated_at = "withdrawn", actor.label, now
    session.flush()
    return row


def public(*, session: Session, token: str) -> CustomerVersion:
    """Return the customer text a public URL names, or NotFound (unknown, not public, or the org turned it off)."""
    row = None
    if token and len(token) <= 64:
        row = session.scalar(select(CustomerVersion).where(CustomerVersion.public_token == token))
    if row is None or row.status != "public" or not orgs.get_org(session=session, org_id=row.org_id).public_postmortems:
        raise NotFound("There is no public postmortem at this address.")
    return row
