"""Postmortem pages: the card fragment and its actions, the editor, original-vs-current, history, Markdown."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from pydantic import ValidationError

from blametrail import db
from blametrail.engines.sections import SEVERITIES, TIMELINE_SOURCES, SectionsPatch
from blametrail.errors import (
    AIDisabled,
    InvalidState,
    PlanNotEligible,
    QuotaExceeded,
    RateLimited,
    ValidationFailed,
    VersionConflict,
)
from blametrail.incidents import service as incidents
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import service as postmortems
from blametrail.web import presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm, editform
from blametrail.web.pages.card import render_card
from blametrail.web.pages.common import FormDep, flash, is_htmx, redirect, render
from blametrail.web.pages.incidents import render_detail
from blametrail.web.params import IdPath

router = APIRouter(prefix="/incidents/{incident_id}/postmortem")
# Refusals a person can act on are shown on the card itself; Forbidden and NotFound use the error page.
CARD_REFUSALS = (RateLimited, InvalidState, QuotaExceeded, PlanNotEligible, AIDisabled)
CONFLICT_MESSAGE = "Someone else saved this postmortem — review their changes"


@router.get("/card")
def card(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return render_card(request, session=session, actor=actor, incident=incident, now=now)


def _card_action(request: Request, *, session, actor, rt, now, incident_id: int, action: Callable[[], object],
                 success: str | Callable[[object], str]):
    """Run a card action; answer htmx with the fresh card, a plain form post with a redirect (or the page on refusal).

    `success` is the message shown after it, or a function of the action's result that returns it.
    """
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    try:
        result = action()
    except CARD_REFUSALS as exc:
        db.rollback(session)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        notice = {"kind": "error", "text": exc.detail,
                  "retry_after": exc.retry_after if isinstance(exc, RateLimited) else None}
        if is_htmx(request):
            return render_card(request, session=session, actor=actor, incident=incident, now=now, notice=notice,
                               status_code=exc.status, headers=headers)
        return render_detail(request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id,
                             status_code=exc.status, card_notice=notice, headers=headers)
    success = success(result) if callable(success) else success
    if is_htmx(request):
        return render_card(request, session=session, actor=actor, incident=incident, now=now,
                           notice={"kind": "success", "text": success})
    flash(request, success, "success")
    return redirect(f"/incidents/{incident_id}#postmortem")


@router.post("/generate")
def generate(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    return _card_action(
        request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id,
        action=lambda: postmortems.request_generation(session=session, actor=actor, incident_id=incident_id, now=now),
        success="Postmortem queued: the draft appears here in a moment.")


@router.post("/regenerate")
def regenerate(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
               rt: RuntimeDep, now: NowDep):
    overwrite = form.get("overwrite_edited") in ("1", "on", "true")
    return _card_action(
        request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id,
        action=lambda: postmortems.regenerate(session=session, actor=actor, incident_id=incident_id,
                                              overwrite_edited=overwrite, now=now,
                                              interval_seconds=rt.settings.regenerate_interval_seconds),
        success="Regeneration queued: the new draft appears here in a moment.")


@router.post("/publish")
def publish(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
            rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.PUBLISH)
    if not confirm.confirmed(form):  # why: publishing shows the text to everyone; asked first (web/pages/confirm.py)
        return confirm.ask(request, actor=actor, title=f"Publish the postmortem of incident #{incident.id}?",
                           question=f"The postmortem of “{incident.title}” becomes the published version everyone "
                                    "reads.", action=f"/incidents/{incident.id}/postmortem/publish",
                           button="Publish", cancel_url=f"/incidents/{incident.id}#postmortem")
    return _card_action(
        request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id,
        action=lambda: postmortems.publish(session=session, actor=actor, incident_id=incident_id, now=now),
        success=lambda pm: _published_message(session, pm))


def _published_message(session, pm) -> str:
    """Name the version just published (a republish after edits makes version 2, 3, …)."""
    latest = postmortems.publication(session=session, pm=pm).latest
    return f"Postmortem published (version {latest.version})." if latest else "Postmortem published."


def _editor(request: Request, *, actor, incident, pm, values: dict, version: int, errors: list[str] | None = None,
            conflict: list[dict] | None = None, status_code: int = 200):
    ctx = {"incident": incident, "pm": presenters.postmortem_read(pm), "v": values, "version": version,
           "errors": errors or [], "conflict": conflict, "severities": SEVERITIES, "sources": TIMELINE_SOURCES,
           "priorities": ("high", "medium", "low"), "levels": ("high", "medium", "low"),
           "conflict_message": CONFLICT_MESSAGE}
    return render(request, "postmortems/edit.html", ctx, actor=actor, status_code=status_code)


def _load_for_edit(*, session, actor, incident_id: int):
    require(actor.role, Action.POSTMORTEM_WRITE)
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if pm.sections is None:
        raise InvalidState("There is no draft to edit yet; wait for the generation to finish.")
    return incident, pm


@router.get("/edit")
def edit_page(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    incident, pm = _load_for_edit(session=session, actor=actor, incident_id=incident_id)
    return _editor(request, actor=actor, incident=incident, pm=pm, values=editform.values_from_sections(pm.sections),
                   version=pm.version)


@router.post("/edit")
def edit_save(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    incident, pm = _load_for_edit(session=session, actor=actor, incident_id=incident_id)
    values = editform.values_from_form(form)
    try:
        version = int(str(form.get("version") or ""))
    except ValueError:
        version = 0
    sections, errors = editform.parse(values, current=pm.sections)
    if version < 1:
        errors = ["The form lost its version number; reload the editor.", *errors]
    if errors:
        return _editor(request, actor=actor, incident=incident, pm=pm, values=values, version=version, errors=errors,
                       status_code=422)
    changes = editform.changed_sections(sections, pm.sections)
    if not changes:
        flash(request, "Nothing changed; the postmortem was left as it was.")
        return redirect(f"/incidents/{incident_id}#postmortem")
    try:
        postmortems.edit(session=session, actor=actor, incident_id=incident_id, version=version,
                         patch=SectionsPatch.model_validate(changes), now=now)
    except VersionConflict:
        db.rollback(session)
        pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
        mine = [{"label": editform.LABELS[k], "text": editform.section_text(k, v)} for k, v in changes.items()]
        return _editor(request, actor=actor, incident=incident, pm=pm, values=editform.values_from_sections(pm.sections),
                       version=pm.version, conflict=mine, status_code=409)
    except (ValidationFailed, ValidationError) as exc:
        db.rollback(session)
        errors = [exc.detail] if isinstance(exc, ValidationFailed) else [e["msg"] for e in exc.errors()]
        return _editor(request, actor=actor, incident=incident, pm=pm, values=values, version=version, errors=errors,
                       status_code=422)
    flash(request, "Postmortem saved.", "success")
    return redirect(f"/incidents/{incident_id}#postmortem")


@router.get("/original")
def original(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    draft = presenters.original_read(pm)  # same rules as the API
    sections = editform.compare(draft["sections"], pm.sections or {})
    return render(request, "postmortems/original.html",
                  {"incident": incident, "pm": presenters.postmortem_read(pm), "draft": draft, "sections": sections},
                  actor=actor)


@router.get("/revisions")
def revisions(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    rows = postmortems.list_revisions(session=session, pm=pm)
    return render(request, "postmortems/revisions.html",
                  {"incident": incident, "pm": presenters.postmortem_read(pm), "revisions": list(reversed(rows)),
                   "runs": postmortems.runs(session=session, pm=pm),
                   "show_audit": actor.role in ("owner", "admin")},  # why: prompts hold the whole evidence pack
                  actor=actor)


@router.get("/export.md")
def export_markdown(incident_id: IdPath, actor: PageActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return presenters.markdown_download(incident, pm)  # byte-for-byte the API's
