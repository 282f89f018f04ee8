"""Action item pages: one list across incidents (filters, inline status), an incident's items (add, from the draft),
and an item's edit page with the repeat decision (close as duplicate / keep separate)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from blametrail import db, netguard
from blametrail.actions import service as actions
from blametrail.actions.models import PRIORITIES, STATUSES
from blametrail.actions.schemas import ActionItemCreate, ActionItemUpdate
from blametrail.errors import Conflict, InvalidState, UpstreamFailed, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.postmortems import service as postmortems
from blametrail.vendors import service as vendors
from blametrail.vendors import tracker_sync
from blametrail.vendors.registry import REGISTRY
from blametrail.web import presenters
from blametrail.web.api.action_items import from_draft, item_read, item_reads
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, is_htmx, redirect, render, safe_next, validation_messages
from blametrail.web.params import IdPath

router = APIRouter()
STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "done": "Done", "wont_do": "Won't do"}


def _ctx(**ctx) -> dict:
    return {"nav": "action_items", "statuses": STATUSES, "status_labels": STATUS_LABELS, "priorities": PRIORITIES,
            **ctx}


def _filters(request: Request) -> dict:
    q = request.query_params
    return {k: (q.get(k) or "").strip()[:320] for k in ("status", "owner", "incident_id", "overdue")}


@router.get("/action-items")
def list_page(request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    f = _filters(request)
    incident_id = None
    if f["incident_id"]:
        if not f["incident_id"].isdigit() or not 1 <= int(f["incident_id"]) <= db.MAX_INT:
            raise ValidationFailed("incident must be an incident number.")
        incident_id = int(f["incident_id"])
    rows = actions.list_items(session=session, org_id=actor.org_id, today=now.date(), status=f["status"] or None,
                              owner=f["owner"] or None, incident_id=incident_id,
                              overdue="true" if f["overdue"] in ("true", "on", "1") else None)
    return render(request, "action_items/list.html", _ctx(
        items=item_reads(session, rows, now), filters=f, filtered=any(f.values()), back="/action-items"),
        actor=actor)


@router.get("/incidents/{incident_id}/action-items")
def incident_items(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    return incident_page(incident_id, request, actor, session, now)


def incident_page(incident_id: int, request: Request, actor, session, now, errors: list[str] | None = None,
                  new: dict | None = None, status_code: int = 200):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    rows = actions.list_items(session=session, org_id=actor.org_id, today=now.date(), incident_id=incident_id)
    pm = postmortems.find(session=session, org_id=actor.org_id, incident_id=incident_id)
    draft = actions.draft_items(pm.sections if pm else None)
    return render(request, "action_items/incident.html", _ctx(
        incident=incident, items=item_reads(session, rows, now), draft_count=len(draft), errors=errors or [],
        new=new or {"priority": "medium"}, back=f"/incidents/{incident_id}/action-items"),
        actor=actor, status_code=status_code)


@router.post("/incidents/{incident_id}/action-items")
def add_item(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
             now: NowDep):
    incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    new = {k: field(form, k) for k in ("title", "priority", "owner", "due_date")}
    try:
        data = ActionItemCreate.model_validate({k: v or None for k, v in new.items() if v} | {"title": new["title"]})
    except ValidationError as exc:
        db.rollback(session)
        return incident_page(incident_id, request, actor, session, now, errors=validation_messages(exc), new=new,
                             status_code=422)
    item = actions.create(session=session, actor=actor, incident_id=incident_id, data=data, now=now)
    flash(request, f"Action item #{item.id} added.", "success")
    return redirect(f"/incidents/{incident_id}/action-items")


@router.post("/incidents/{incident_id}/action-items/from-draft")
def add_from_draft(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    before = {i.id for i in actions.list_items(session=session, org_id=actor.org_id, today=now.date(),
                                                 incident_id=incident_id)}
    made = from_draft(session=session, actor=actor, incident_id=incident_id, now=now)
    fresh = [i for i in made if i.id not in before]
    flash(request, f"{len(fresh)} action item(s) created from the draft." if fresh
          else "Every action item of the draft is already tracked.", "success" if fresh else "info")
    return redirect(f"/incidents/{incident_id}/action-items")


@router.get("/action-items/{item_id}")
def item_detail(item_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    return item_page(item_id, request, actor, session, now)


def item_page(item_id: int, request: Request, actor, session, now, errors: list[str] | None = None,
              status_code: int = 200):
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    configured = vendors.list_for_org(session=session, org_id=actor.org_id)
    linkable = [{"kind": k, "label": REGISTRY[k].label} for k in tracker_sync.MODULES if k in configured]
    return render(request, "action_items/item.html", _ctx(item=item_read(session, item, now), errors=errors or [],
                                                          trackers=linkable), actor=actor, status_code=status_code)


@router.post("/action-items/{item_id}/external")
def link_to_tracker(item_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                    rt: RuntimeDep, now: NowDep):
    """Create the item's issue in the chosen tracker (members and up); a refusal is said on the item's page."""
    base, _ = presenters.public_base(request, rt.settings)
    try:
        ext = tracker_sync.push_item(session=session, actor=actor, item_id=item_id, tracker=field(form, "tracker"),
                                     box=rt.secret_box, policy=netguard.policy_from(rt.settings),
                                     timeout=rt.settings.vendor_timeout_seconds, base_url=base, now=now)
    except (UpstreamFailed, Conflict, InvalidState, ValidationFailed) as exc:
        if not isinstance(exc, UpstreamFailed):
            db.rollback(session)  # why: an upstream failure keeps its record on the integration; others change nothing
        flash(request, exc.detail, "error")
        return redirect(f"/action-items/{item_id}")
    flash(request, f"Issue {ext['key']} created; its status now follows the tracker.", "success")
    return redirect(f"/action-items/{item_id}")


def _update_from_form(form, names) -> ActionItemUpdate:
    raw = {}
    for name in names:
        value = field(form, name)
        if name in ("owner", "due_date"):
            raw[name] = value or None
        elif value:
            raw[name] = value
    return ActionItemUpdate.model_validate(raw)


@router.post("/action-items/{item_id}")
def edit_item(item_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    try:
        data = _update_from_form(form, ("title", "priority", "owner", "due_date", "status"))
    except ValidationError as exc:
        db.rollback(session)
        return item_page(item_id, request, actor, session, now, errors=validation_messages(exc), status_code=422)
    actions.update(session=session, actor=actor, item=item, data=data, now=now)
    flash(request, "Action item saved.", "success")
    return redirect(f"/action-items/{item_id}")


@router.post("/action-items/{item_id}/status")
def set_status(item_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    """The inline status form of a list row: htmx gets the row back, a plain form post goes back to the list."""
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    try:
        data = ActionItemUpdate.model_validate({"status": field(form, "status")})
    except ValidationError as exc:
        raise ValidationFailed("; ".join(validation_messages(exc))) from exc
    actions.update(session=session, actor=actor, item=item, data=data, now=now)
    if is_htmx(request):
        return render(request, "action_items/_row.html", _ctx(i=item_read(session, item, now)), actor=actor,
                      full_page=False)
    flash(request, f"Action item #{item.id} is now {STATUS_LABELS[item.status].lower()}.", "success")
    return redirect(safe_next(field(form, "next"), "/action-items"))


@router.post("/action-items/{item_id}/close-duplicate")
def close_duplicate(item_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    actions.close_as_duplicate(session=session, actor=actor, item=item, now=now)
    flash(request, "Closed as a duplicate (won't do); reopen it here if that was wrong.", "success")
    return redirect(f"/action-items/{item_id}")


@router.post("/action-items/{item_id}/keep-separate")
def keep_separate(item_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    actions.keep_separate(session=session, actor=actor, item=item, now=now)
    flash(request, "Kept as a separate action item.", "success")
    return redirect(f"/action-items/{item_id}")
