"""Postmortem pages: the card fragment and its actions, the editor, original-vs-current, history, Markdown."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
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
from blametrail.orgs import templates as orgs_templates
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import reviews
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
                 success: str | Callable[[object], str], next_url: str | None = None):
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
    return redirect(next_url or f"/incidents/{incident_id}#postmortem")


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
        success=lambda pm: _published_message(session, pm),
        next_url=_document_next(form.get("next"), incident_id))


def _document_next(value: object, incident_id: int) -> str | None:
    """Return where a form asked to go back to, if it is this postmortem's document page (nothing else)."""
    page = f"/incidents/{incident_id}/postmortem"
    return page if isinstance(value, str) and value == page else None


def _published_message(session, pm) -> str:
    """Name the version just published (a republish after edits makes version 2, 3, …)."""
    latest = postmortems.publication(session=session, pm=pm).latest
    approved = reviews.summary(session=session, pm=pm)["approved_by"]
    by = f" Approved by {', '.join(approved)}." if approved else ""
    return (f"Postmortem published (version {latest.version})." if latest else "Postmortem published.") + by


def _layout(session, actor) -> list[dict]:
    """The sections in the organization's order: [{key, title, extra}] (extra sections live in sections["extra"])."""
    return orgs_templates.section_layout(session, actor.org_id)


def _editor(request: Request, *, session, actor, incident, pm, values: dict, version: int, section: str | None = None,
            errors: list[str] | None = None, conflict: list[dict] | None = None, previews: dict | None = None,
            saved: list[str] | None = None, status_code: int = 200):
    layout = _layout(session, actor)
    extra = [e for e in layout if e.get("extra")] if "extra" in values else []
    title = next((e["title"] for e in layout if e["key"] == section), None) if section else None
    ctx = {"incident": incident, "pm": presenters.postmortem_read(pm), "v": values, "version": version,
           "errors": errors or [], "conflict": conflict, "severities": SEVERITIES, "sources": TIMELINE_SOURCES,
           "priorities": ("high", "medium", "low"), "levels": ("high", "medium", "low"),
           "conflict_message": CONFLICT_MESSAGE, "section": section, "section_title": title,
           "extra_sections": [e for e in extra if section in (None, "extra:" + e["key"])],
           "previews": previews or {}, "saved": saved or []}
    return render(request, "postmortems/edit.html", ctx, actor=actor, status_code=status_code)


def _load_for_edit(*, session, actor, incident_id: int):
    require(actor.role, Action.POSTMORTEM_WRITE)
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if pm.sections is None:
        raise InvalidState("There is no draft to edit yet; wait for the generation to finish.")
    return incident, pm


def _section_param(value: object, sections: dict | None) -> str | None:
    """Return the section to edit alone (a built-in key or `extra:<key>`), None for the whole postmortem."""
    if value in (None, ""):
        return None
    value = str(value)
    if value in editform.SECTION_FIELDS:
        return value
    if value.startswith("extra:") and value.removeprefix("extra:") in ((sections or {}).get("extra") or {}):
        return value
    raise ValidationFailed(f"There is no section {value[:60]!r} to edit.",
                           [{"loc": ["query", "section"], "msg": "unknown section"}])


def _section_keys(section: str | None) -> tuple[str, ...]:
    if section is None:
        return (*editform.SECTION_FIELDS, "extra")
    return ("extra",) if section.startswith("extra:") else (section,)


def _anchor(section: str | None) -> str:
    return f"/incidents/{{}}/postmortem#{section.replace(':', '-')}" if section else "/incidents/{}/postmortem"


@router.get("/edit")
def edit_page(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    incident, pm = _load_for_edit(session=session, actor=actor, incident_id=incident_id)
    section = _section_param(request.query_params.get("section"), pm.sections)
    return _editor(request, session=session, actor=actor, incident=incident, pm=pm,
                   values=editform.values_from_sections(pm.sections), version=pm.version, section=section)


def _submitted(form, base: dict, section: str | None) -> dict:
    """The form's values; an editor for one section submits only its fields, the rest stay as in the base."""
    submitted = editform.values_from_form(form)
    if section is None:
        return submitted
    values = editform.values_from_sections(base)
    if section.startswith("extra:"):
        key = section.removeprefix("extra:")
        values["extra"] = {**values.get("extra", {}), key: submitted.get("extra", {}).get(key, "")}
        return values
    return {**values, **{f: submitted[f] for f in editform.SECTION_FIELDS[section]}}


def _conflict_rows(keys: list[str], mine: dict, theirs: dict) -> list[dict]:
    return [{"key": k, "label": editform.LABELS.get(k, "Template sections"),
             "theirs": editform.section_text(k, theirs.get(k)), "mine": editform.section_text(k, mine.get(k)),
             "value": json.dumps(mine.get(k), separators=(",", ":"))} for k in keys]


@router.post("/edit")
def edit_save(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    incident, pm = _load_for_edit(session=session, actor=actor, incident_id=incident_id)
    try:
        version = int(str(form.get("version") or ""))
    except ValueError:
        version = 0
    if form.get("resolve"):
        return _resolve(request, form=form, session=session, actor=actor, incident=incident, pm=pm, version=version,
                        now=now)
    base = postmortems.sections_at(session=session, pm=pm, version=version) if 1 <= version < db.MAX_INT else None
    section = _section_param(form.get("section"), base if base is not None else pm.sections)
    values = _submitted(form, base if base is not None else pm.sections, section)
    op = str(form.get("op") or "")
    if op:  # a table operation or a preview: show the form again with the typed values, nothing saved
        previews = {}
        if op.startswith("preview:"):
            field = op.removeprefix("preview:")
            text = values.get(field, "") if field in editform.PROSE_FIELDS else values.get("extra", {}).get(
                field.removeprefix(editform.EXTRA_PREFIX), "")
            previews[field] = Markup(editform.render_markdown(text))
        else:
            values = editform.apply_op(values, op)
        return _editor(request, session=session, actor=actor, incident=incident, pm=pm, values=values,
                       version=version, section=section, previews=previews)
    errors: list[str] = []
    if base is None:
        errors = ["The form's version is unknown; reload the editor."] if version < 1 else []
    sections, parse_errors = editform.parse(values, current=base if base is not None else pm.sections)
    errors += parse_errors
    if errors:
        return _editor(request, session=session, actor=actor, incident=incident, pm=pm, values=values,
                       version=version, section=section, errors=errors, status_code=422)
    changes = editform.changed_sections(sections, base if base is not None else pm.sections)
    changes = {k: v for k, v in changes.items() if k in _section_keys(section)}
    target = _anchor(section).format(incident_id)
    if not changes:
        flash(request, "Nothing changed; the postmortem was left as it was.")
        return redirect(target)
    try:
        postmortems.edit(session=session, actor=actor, incident_id=incident_id, version=version,
                         patch=SectionsPatch.model_validate(changes), now=now)
    except VersionConflict as exc:
        db.rollback(session)
        return _after_conflict(request, exc=exc, session=session, actor=actor, incident=incident, changes=changes,
                               now=now, section=section)
    except (ValidationFailed, ValidationError) as exc:
        db.rollback(session)
        errors = [exc.detail] if isinstance(exc, ValidationFailed) else [e["msg"] for e in exc.errors()]
        return _editor(request, session=session, actor=actor, incident=incident, pm=pm, values=values,
                       version=version, section=section, errors=errors, status_code=422)
    flash(request, "Postmortem saved.", "success")
    return redirect(target)


def _after_conflict(request: Request, *, exc: VersionConflict, session, actor, incident, changes: dict, now, section):
    """Save the sections only this person changed, then ask about the ones both changed (theirs vs mine)."""
    both = [k for k in exc.extra.get("sections") or [] if k in changes]
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident.id)
    if not both:  # the base version is unknown: nothing can be merged; show their version to edit again
        return _editor(request, session=session, actor=actor, incident=incident, pm=pm,
                       values=editform.values_from_sections(pm.sections), version=pm.version, section=section,
                       conflict=[], status_code=409)
    rest = {k: v for k, v in changes.items() if k not in both}
    saved: list[str] = []
    if rest:
        try:
            postmortems.edit(session=session, actor=actor, incident_id=incident.id,
                             version=int(exc.extra["current_version"]), patch=SectionsPatch.model_validate(rest),
                             now=now)
            saved = [editform.LABELS.get(k, "Template sections") for k in rest]
        except VersionConflict:
            db.rollback(session)
        pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident.id)
    conflict = _conflict_rows(both, changes, pm.sections or {})
    return _editor(request, session=session, actor=actor, incident=incident, pm=pm,
                   values=editform.values_from_sections(pm.sections), version=pm.version, section=section,
                   conflict=conflict, saved=saved, status_code=409)


def _resolve(request: Request, *, form, session, actor, incident, pm, version: int, now):
    """Save the conflict panel's choices: for each section both changed, keep theirs or use mine."""
    section = _section_param(form.get("section"), pm.sections)
    target = _anchor(section).format(incident.id)
    patch: dict = {}
    for key in form.getlist("conflict_key"):
        if not isinstance(key, str) or (key not in editform.SECTION_FIELDS and key != "extra"):
            continue
        if form.get(f"choice_{key}") == "mine":
            try:
                patch[key] = json.loads(str(form.get(f"mine_{key}") or "null"))
            except ValueError:
                raise ValidationFailed("The form's saved text is unreadable; edit the section again.",
                                       [{"loc": ["form", f"mine_{key}"], "msg": "not JSON"}]) from None
    if not patch:
        flash(request, "Kept their version; nothing else to save.", "success")
        return redirect(target)
    try:
        validated = SectionsPatch.model_validate(patch)
    except ValidationError as exc:
        raise ValidationFailed("The sections are invalid.", [{"loc": list(e["loc"]), "msg": e["msg"]}
                                                             for e in exc.errors()]) from None
    try:
        postmortems.edit(session=session, actor=actor, incident_id=incident.id, version=version, patch=validated,
                         now=now)
    except VersionConflict as exc:
        db.rollback(session)
        return _after_conflict(request, exc=exc, session=session, actor=actor, incident=incident,
                               changes=validated.model_dump(exclude_unset=True, mode="json"), now=now,
                               section=section)
    flash(request, "Postmortem saved.", "success")
    return redirect(target)


@router.post("/preview")
def preview(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    """Render a prose field's Markdown as sanitized HTML (htmx swaps it in under the field)."""
    _load_for_edit(session=session, actor=actor, incident_id=incident_id)
    field = str(form.get("field") or "")
    if field not in editform.PROSE_FIELDS and not field.startswith(editform.EXTRA_PREFIX):
        raise ValidationFailed("Preview a summary, root cause, customer impact or template section.",
                               [{"loc": ["form", "field"], "msg": "unknown field"}])
    text = form.get(field)
    html = editform.render_markdown(text if isinstance(text, str) else "")
    return HTMLResponse(f'<div class="md-preview prose" dir="auto">{html or "<p class=muted>Nothing to preview.</p>"}'
                        "</div>")


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
