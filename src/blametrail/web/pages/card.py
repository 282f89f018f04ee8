"""The Postmortem card of the incident page: which buttons a person sees, why a missing one is missing, and how
far a draft in progress has come (step, elapsed time, what to expect)."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi import Request
from sqlalchemy.orm import Session

from blametrail.ai import service as ai
from blametrail.errors import AIDisabled, InvalidState, PlanNotEligible, QuotaExceeded
from blametrail.incidents.models import Incident
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, can
from blametrail.orgs.service import Actor
from blametrail.postmortems import lifecycle, reviews
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun, Postmortem
from blametrail.settings import Settings
from blametrail.web import citations, presenters
from blametrail.web.pages.common import render

AI_DISABLED = "AI features are disabled for this organization."
# The steps a generation goes through, in order, as the worker records them on its run (GenerationRun.step).
STEPS = ("gathering", "asking_model", "checking_citations", "storing")
STEP_LABELS = {"gathering": "Gathering evidence", "asking_model": "Asking the model",
               "checking_citations": "Checking citations", "storing": "Saving the draft"}
BUILTIN_STEP_LABELS = {**STEP_LABELS, "asking_model": "Writing the draft"}  # no model behind the built-in engine
STEP_ALIASES = {"grounding": "checking_citations"}  # an older name of the same step
DEFAULT_DEADLINE_SECONDS = 55  # BLAMETRAIL_AI_DEADLINE_SECONDS's default, for a card rendered without the settings
_RETRY_SUFFIX = re.compile(r"[;,.]?\s*try again in \d+\s*s\.?\s*$", re.IGNORECASE)


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


def seconds_text(seconds: float) -> str:
    """Say a short duration the way the card shows it: '23 s', '2 min 05 s'."""
    total = max(0, int(seconds))
    minutes, secs = divmod(total, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _uses_model(*, session: Session, org_id: int, settings: Settings | None, run: GenerationRun | None) -> bool:
    """Tell whether this draft goes to a model: the running attempt's engine, else the organization's choice."""
    if run is not None:
        return run.engine != "builtin"
    if settings is None:
        return False
    return ai.to_read(settings=settings, config=ai.get_config(session=session, org_id=org_id))["engine"] != "builtin"


def _deadline(*, session: Session, org_id: int, settings: Settings | None) -> int:
    """Return the seconds a model has for a whole draft: the organization's own option, else the setting."""
    config = ai.get_config(session=session, org_id=org_id)
    own = (config.options or {}).get("deadline_seconds") if config is not None else None
    return int(own or (settings.ai_deadline_seconds if settings is not None else DEFAULT_DEADLINE_SECONDS))


def progress(*, session: Session, pm: Postmortem, run: GenerationRun | None, now: datetime,
             settings: Settings | None) -> dict:
    """Describe a draft in progress: the current step in words, time in the step and in all, and what to expect."""
    model = _uses_model(session=session, org_id=pm.org_id, settings=settings, run=run)
    deadline = _deadline(session=session, org_id=pm.org_id, settings=settings) if model else None
    expect = "Drafts usually take under a minute."
    if model:
        expect += (f" The model has {deadline} s in all; if it has not answered by then, the built-in draft is "
                   "stored instead.")
    out = {"queued": pm.status == "queued", "expect": expect, "steps": [], "label": None, "step_seconds": None,
           "elapsed": None, "since": None}
    if pm.status == "queued" or run is None:
        since = (pm.queued_at or pm.generation_requested_at) if pm.status == "queued" else pm.claimed_at
        out["label"] = "Waiting for a worker" if pm.status == "queued" else "Starting"
        out["since"] = seconds_text((now - since).total_seconds()) if since else None
        return out
    labels = STEP_LABELS if model else BUILTIN_STEP_LABELS
    steps = STEPS if model else tuple(k for k in STEPS if k != "checking_citations")  # why: no model, no citations
    step = STEP_ALIASES.get(run.step or "", run.step or "gathering")
    position = steps.index(step) if step in steps else -1
    out["label"] = labels.get(step) or step.replace("_", " ").capitalize()
    out["step_seconds"] = seconds_text((now - (run.step_at or run.started_at)).total_seconds())
    out["elapsed"] = seconds_text((now - run.started_at).total_seconds())
    out["steps"] = [{"key": key, "label": labels[key],
                     "state": "done" if i < position else "current" if i == position else "todo"}
                    for i, key in enumerate(steps)]
    return out


def _wait_notice(notice: dict | None) -> dict | None:
    """Turn a Regenerate refusal for timing into one neutral message whose only countdown is the live one."""
    if not notice or not notice.get("retry_after"):
        return notice
    rule = _RETRY_SUFFIX.sub("", notice.get("text") or "").strip().rstrip(";,.")
    return {"kind": "wait", "text": f"{rule}." if rule else "", "retry_after": int(notice["retry_after"])}


def _regenerate_wait(pm: Postmortem, now: datetime, settings: Settings | None) -> dict | None:
    """Return how long until Regenerate is accepted again and the rule's interval, while that wait lasts."""
    if settings is None or pm.status not in lifecycle.REGENERATABLE:
        return None
    interval = settings.regenerate_interval_seconds
    left = (pm.generation_requested_at - now).total_seconds() + interval
    if left <= 0:
        return None
    return {"seconds": int(left + 0.999), "interval": seconds_text(interval).replace(" 00 s", "")}


def card_context(*, session: Session, actor: Actor, incident: Incident, now: datetime,
                 notice: dict | None = None, settings: Settings | None = None) -> dict:
    """Return everything the card template needs, with every rule decided here rather than in the template."""
    pm = postmortems.find(session=session, org_id=actor.org_id, incident_id=incident.id)
    org = orgs.get_org(session=session, org_id=actor.org_id)
    write, publish = can(actor.role, Action.POSTMORTEM_WRITE), can(actor.role, Action.PUBLISH)
    notice = _wait_notice(notice)
    card: dict = {
        "incident_id": incident.id, "pm": None, "notice": notice, "skip_reason": incident.postmortem_skip_reason,
        "polling": False, "generate": {"show": False, "kind": None, "reason": None},
        "edit": {"show": False, "reason": None}, "regenerate": {"show": False, "reason": None, "label": "Regenerate"},
        "publish": {"show": False, "reason": None}, "links": {}, "progress": None, "fallback": None,
        "regenerate_wait": None,
    }
    if pm is None:
        card["generate"] = _generate_state(session=session, actor=actor, incident=incident, now=now)
        return {"card": card}

    status = pm.status
    in_flight = status in lifecycle.IN_FLIGHT
    latest = next(iter(postmortems.runs(session=session, pm=pm)), None)
    card["pm"] = presenters.postmortem_read(pm)
    card["polling"] = in_flight
    if in_flight:
        running = latest if latest is not None and latest.status == "running" and status == "generating" else None
        card["progress"] = progress(session=session, pm=pm, run=running, now=now, settings=settings)
    elif latest is not None and latest.status == "fallback":
        card["fallback"] = {"engine": latest.engine, "reason": pm.error or latest.error}
    if pm.sections is not None:  # the card's excerpt cites like the document page does
        card["cite"] = citations.citer_for(session, org_id=actor.org_id, incident=incident,
                                           values=[pm.sections.get("summary")])
    card["approved_by"] = reviews.summary(session=session, pm=pm)["approved_by"] if pm.sections is not None else []
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
            if not (notice and notice.get("retry_after")):  # why: one countdown on the card, never two
                card["regenerate_wait"] = _regenerate_wait(pm, now, settings)
        if not publish:
            card["publish"]["reason"] = "Only owners and admins can publish."
    if publish:
        if status in lifecycle.PUBLISHABLE:
            card["publish"] = {"show": True, "reason": None}
        elif status == "published" and card["pm"]["edited_after_publish"]:
            # why: edits after publishing are not what readers of the published version see until it is republished
            card["publish"] = {"show": True, "reason": None, "label": "Republish"}
        elif in_flight:
            card["publish"]["reason"] = "Publish is available once the draft is ready."
        elif status == "failed":
            card["publish"]["reason"] = "A failed generation has nothing to publish; retry it first."
    return {"card": card}


def render_card(request: Request, *, session: Session, actor: Actor, incident: Incident, now: datetime,
                notice: dict | None = None, status_code: int = 200, headers: dict | None = None):
    """Render the card alone (the htmx fragment)."""
    settings = request.app.state.runtime.settings
    ctx = card_context(session=session, actor=actor, incident=incident, now=now, notice=notice, settings=settings)
    return render(request, "postmortems/_card.html", ctx, actor=actor, status_code=status_code, headers=headers,
                  full_page=False)
