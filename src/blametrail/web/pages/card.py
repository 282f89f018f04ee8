"""The Postmortem card of the incident page: which buttons a person sees, and why a missing one is missing."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlalchemy.orm import Session

from blametrail.errors import AIDisabled, InvalidState, PlanNotEligible, QuotaExceeded
from blametrail.incidents.models import Incident
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, can
from blametrail.orgs.service import Actor
from blametrail.postmortems import lifecycle
from blametrail.postmortems import service as postmortems
from blametrail.web import presenters
from blametrail.web.pages.common import render

AI_DISABLED = "AI features are disabled for this organization."


def _generate_state(*, session: Session, actor: Actor, incident: Incident, now: datetime) -> dict:
    """Return whether Generate is offered, or the kind of reason and its words."""
    if not can(actor.role, Action.POSTMORTEM_WRITE):
        return {"show": False, "kind": None, "reason": None}
    try:
        postmortems.check_can_create(session=session, incident=incident, now=now)
    except AIDisabled:
        owner = can(actor.role, Action.ORG_SETTINGS)
        hint = " Turn them on in Settings." if owner else " An owner can turn them on in Settings."
        return {"show": False, "kind": "ai_disabled", "reason": AI_DISABLED + hint}
    except PlanNotEligible:
        org = orgs.get_org(session=session, org_id=actor.org_id)
        return {"show": False, "kind": "upgrade", "reason": (
            f"The {org.plan.capitalize()} plan does not include AI postmortems. Upgrade to Starter (5 a month) "
            "or Pro (50 a month) to draft them.")}
    except QuotaExceeded:
        u = orgs.usage(session=session, org=orgs.get_org(session=session, org_id=actor.org_id), now=now)
        return {"show": False, "kind": "quota", "reason": (
            f"{u['used']}/{u['limit']} postmortems used this month, resets on {u['resets_at']:%Y-%m-%d} (UTC).")}
    except InvalidState as exc:
        if incident.status != "resolved":
            return {"show": False, "kind": "open", "reason": (
                "The incident is still open: resolve it and the postmortem is drafted automatically.")}
        return {"show": False, "kind": "state", "reason": exc.detail}
    return {"show": True, "kind": None, "reason": None}


def card_context(*, session: Session, actor: Actor, incident: Incident, now: datetime,
                 notice: dict | None = None) -> dict:
    """Return everything the card template needs, with every rule decided here rather than in the template."""
    pm = postmortems.find(session=session, org_id=actor.org_id, incident_id=incident.id)
    org = orgs.get_org(session=session, org_id=actor.org_id)
    write, publish = can(actor.role, Action.POSTMORTEM_WRITE), can(actor.role, Action.PUBLISH)
    card: dict = {
        "incident_id": incident.id, "pm": None, "notice": notice, "skip_reason": incident.postmortem_skip_reason,
        "polling": False, "generate": {"show": False, "kind": None, "reason": None},
        "edit": {"show": False, "reason": None}, "regenerate": {"show": False, "reason": None, "label": "Regenerate"},
        "publish": {"show": False, "reason": None}, "links": {},
    }
    if pm is None:
        card["generate"] = _generate_state(session=session, actor=actor, incident=incident, now=now)
        return {"card": card}

    status = pm.status
    in_flight = status in lifecycle.IN_FLIGHT
    card["pm"] = presenters.postmortem_read(pm)
    card["polling"] = in_flight
    card["links"] = {"original": pm.original_sections is not None, "history": True,
                     "markdown": pm.sections is not None}
    if write:
        if pm.sections is not None:
            card["edit"] = {"show": True, "reason": None}
        else:
            card["edit"] = {"show": False, "reason": "Edit becomes available once the first draft is ready."}
        if status == "published":
            card["regenerate"]["reason"] = "Published postmortems cannot be regenerated; edit them instead."
        elif in_flight:
            card["regenerate"]["reason"] = "A draft is being generated; Regenerate is available once it finishes."
        elif not org.ai_enabled:
            card["regenerate"]["reason"] = AI_DISABLED
        else:
            card["regenerate"] = {"show": True, "reason": None, "label": "Retry" if status == "failed" else "Regenerate"}
        if not publish:
            card["publish"]["reason"] = "Only owners and admins can publish."
    if publish:
        if status in lifecycle.PUBLISHABLE:
            card["publish"] = {"show": True, "reason": None}
        elif in_flight:
            card["publish"]["reason"] = "Publish is available once the draft is ready."
        elif status == "failed":
            card["publish"]["reason"] = "A failed generation has nothing to publish; retry it first."
    return {"card": card}


def render_card(request: Request, *, session: Session, actor: Actor, incident: Incident, now: datetime,
                notice: dict | None = None, status_code: int = 200, headers: dict | None = None):
    """Render the card alone (the htmx fragment)."""
    ctx = card_context(session=session, actor=actor, incident=incident, now=now, notice=notice)
    return render(request, "postmortems/_card.html", ctx, actor=actor, status_code=status_code, headers=headers,
                  full_page=False)
