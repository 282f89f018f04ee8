"""Incident pages: the list with filters, the new-incident form, the detail page, updates and resolving.

Text longer than a field's limit is refused with its length and the limit, and kept in the form: never cut.
Resolving is confirmed first (web/pages/confirm.py).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import ValidationError

from blametrail import db
from blametrail.analysis import ids
from blametrail.engines.sections import SEVERITIES
from blametrail.errors import ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.learning import similar as similar_incidents
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import service as postmortems
from blametrail.vendors import service as vendors
from blametrail.vendors import slack_channel
from blametrail.web import presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm
from blametrail.web.pages.card import card_context
from blametrail.web.pages.common import (
    FormDep,
    field,
    flash,
    query_url,
    redirect,
    render,
    split_list,
)
from blametrail.web.pages.summary import summary_context
from blametrail.web.params import IdPath

router = APIRouter()
PAGE_SIZE = 25
FIELD_LABELS = {"title": "Title", "severity": "Severity", "services": "Affected services",
                "description": "Description", "body": "The update"}


def form_messages(exc: ValidationError | ValidationFailed, values: dict[str, str]) -> list[str]:
    """Say what is wrong with a form in words; a text over its limit is named with its length and the limit."""
    if isinstance(exc, ValidationFailed):
        return [exc.detail]
    out = []
    for e in exc.errors():
        name = str(e["loc"][0]) if e.get("loc") else ""
        label = FIELD_LABELS.get(name, name)
        if e.get("type") == "string_too_long":
            limit = int((e.get("ctx") or {}).get("max_length", 0))
            length = len(e["input"]) if isinstance(e.get("input"), str) else len(values.get(name, ""))
            # why: a browser's maxlength cuts a paste without a word; here nothing is cut and the person decides
            split = " or split it into several updates" if name == "body" else ""
            out.append(f"{label} is {length:,} characters long; the limit is {limit:,}. Nothing was saved or cut: "
                       f"shorten it{split}.")
        else:
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            out.append(f"{label}: {msg}" if label else msg)
    return out


def _list_context(*, session, actor, status, service, severity, q, cursor) -> dict:
    filters = {"status": status or "", "service": service or "", "severity": severity or "", "q": q or ""}
    rows, next_cursor = incidents.list_incidents(session=session, org_id=actor.org_id, status=status or None,
                                                 service=service or None, severity=severity or None, q=q or None,
                                                 limit=PAGE_SIZE, cursor=cursor or None)
    return {
        "incidents": presenters.incident_reads(session, rows), "filters": filters,
        "filtered": any(filters.values()),
        "next_url": query_url("/incidents", **filters, cursor=next_cursor) if next_cursor else None,
        "first_url": query_url("/incidents", **filters) if cursor else None,
        "severities": SEVERITIES,
    }


@router.get("/incidents")
def incident_list(request: Request, actor: PageActor, session: SessionDep, status: str = "", service: str = "",
                  severity: str = "", q: str = "", cursor: str = ""):
    ctx = _list_context(session=session, actor=actor, status=status, service=service, severity=severity, q=q,
                        cursor=cursor)
    return render(request, "incidents/list.html", {**ctx, "new": {}}, actor=actor)


@router.post("/incidents")
def incident_create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    require(actor.role, Action.WRITE_INCIDENTS)
    new = {k: field(form, k) for k in ("title", "severity", "services", "description")}
    try:
        data = IncidentCreate(title=new["title"], severity=new["severity"] or None,
                              services=split_list(new["services"]), description=new["description"])
        incident = incidents.create(session=session, actor=actor, data=data, now=now)
    except (ValidationError, ValidationFailed) as exc:
        db.rollback(session)
        errors = form_messages(exc, new)
        ctx = _list_context(session=session, actor=actor, status="", service="", severity="", q="", cursor="")
        return render(request, "incidents/list.html", {**ctx, "new": new, "new_errors": errors}, actor=actor,
                      status_code=422)
    flash(request, f"Incident #{incident.id} opened.", "success")
    return redirect(f"/incidents/{incident.id}")


def slack_panel(*, session, incident) -> dict:
    """Return {"slack": {configured, link}} for the incident page's Slack panel (link: slack_channel.link_read)."""
    configured = vendors.find(session=session, org_id=incident.org_id, kind="slack") is not None
    link = slack_channel.link_read(slack_channel.linked_channel(session=session, incident=incident))
    return {"slack": {"configured": configured, "link": link}}


SIMILAR_TTL_SECONDS = 30.0  # how long an incident page reuses its similar-incidents panel
SIMILAR_CACHED_MAX = 2000


def _similar_panel(request: Request, session, incident) -> list:
    """Return the similar incidents for the page, computed at most once per SIMILAR_TTL_SECONDS per incident."""
    # why: 29 % of the incident page's CPU in the storm benchmark, recomputed for every view of the same incident
    # (a storm's incident is watched by everyone); a panel up to 30 s old is still the right panel
    cache = getattr(request.app.state, "similar_panels", None)
    if cache is None:
        cache = request.app.state.similar_panels = {}
    key, now = (incident.org_id, incident.id), time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < SIMILAR_TTL_SECONDS:
        return hit[1]
    found = similar_incidents.similar(session, incident)
    if len(cache) >= SIMILAR_CACHED_MAX:
        cache.clear()
    cache[key] = (now, found)
    return found


def render_detail(request: Request, *, session, actor, rt, now, incident_id: int, status_code: int = 200,
            update_errors: list[str] | None = None, update_body: str = "", card_notice: dict | None = None,
            headers: dict | None = None, slack_error: str | None = None, slack_value: str = ""):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    timeline = incidents.timeline(session=session, incident=incident, lookback_minutes=rt.settings.lookback_minutes,
                                  now=now)
    ctx = {
        "incident": presenters.incident_read(session, incident), "timeline": timeline,
        "update_errors": update_errors or [], "update_body": update_body,
        **card_context(session=session, actor=actor, incident=incident, now=now, notice=card_notice,
                       settings=rt.settings),
        **summary_context(session=session, incident=incident, rt=rt, now=now),
        **slack_panel(session=session, incident=incident), "slack_error": slack_error, "slack_value": slack_value,
        "similar": _similar_panel(request, session, incident),
    }
    return render(request, "incidents/detail.html", ctx, actor=actor, status_code=status_code, headers=headers)


@router.get("/incidents/{incident_id}")
def incident_detail(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep,
                    now: NowDep):
    return render_detail(request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id)


@router.post("/incidents/{incident_id}/updates")
def incident_update(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                    rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.WRITE_INCIDENTS)
    body = field(form, "body")
    try:
        entry = incidents.add_update(session=session, actor=actor, incident=incident, data=UpdateCreate(body=body),
                                     now=now)
    except (ValidationError, ValidationFailed) as exc:
        db.rollback(session)
        errors = ["Write the update before posting it."] if not body.strip() else form_messages(exc, {"body": body})
        return render_detail(request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id,
                       status_code=422, update_errors=errors, update_body=body)
    flash(request, "Update posted.", "success")
    return redirect(f"/incidents/{incident_id}#{ids.update_id(entry.id)}")


@router.post("/incidents/{incident_id}/resolve")
def incident_resolve(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                     now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.WRITE_INCIDENTS)
    if incident.resolved_at is None and not confirm.confirmed(form):
        return confirm.ask(request, actor=actor, title=f"Resolve incident #{incident.id}?",
                           question=f"“{incident.title}” is marked resolved now, for everyone, and its postmortem "
                                    "draft is queued when AI features are on.",
                           action=f"/incidents/{incident.id}/resolve", button="Resolve incident",
                           cancel_url=f"/incidents/{incident.id}")
    resolved = postmortems.resolve_incident(session=session, incident=incident, now=now, resolved_at=None,
                                            by_label=actor.label, by_user_id=actor.user_id)
    if resolved.postmortem_skip_reason:
        flash(request, f"Incident resolved. No postmortem was queued: {resolved.postmortem_skip_reason}", "warning")
    else:
        flash(request, "Incident resolved; the postmortem draft has been queued.", "success")
    return redirect(f"/incidents/{incident_id}#postmortem")
