"""Review and comments from the document page: comment on a section, reply, resolve; ask for review; approve or
ask for changes. Every form posts here and returns to the document page at the section it touched."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail import db
from blametrail.errors import InvalidState, ValidationFailed
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, can
from blametrail.postmortems import reviews
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Postmortem
from blametrail.web.deps import NowDep, PageActor, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, redirect
from blametrail.web.params import IdPath

router = APIRouter(prefix="/incidents/{incident_id}/postmortem")
comments_router = APIRouter()  # routes named by a comment alone (web/pages/routes.py includes it)


def _back(incident_id: int, anchor: str = "") -> str:
    return f"/incidents/{incident_id}/postmortem" + (f"#{anchor}" if anchor else "")


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 11 else None


@router.post("/comments")
def comment(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
            now: NowDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    section = field(form, "section")
    try:
        c = reviews.add_comment(session=session, actor=actor, pm=pm, section=section, body=field(form, "body"),
                                parent_id=_int(field(form, "parent_id")), now=now)
    except ValidationFailed as exc:
        db.rollback(session)
        flash(request, exc.detail, "error")
        return redirect(_back(incident_id, section.replace(":", "-")))
    flash(request, "Reply added." if c.parent_id else "Comment added.", "success")
    return redirect(_back(incident_id, f"comment-{c.parent_id or c.id}"))


@comments_router.post("/postmortem-comments/{comment_id}/resolve")
def resolve_comment(comment_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                    now: NowDep):
    c = reviews.get_comment_or_404(session=session, org_id=actor.org_id, comment_id=comment_id)
    pm = session.get(Postmortem, c.postmortem_id)
    resolved = field(form, "resolved") != "0"
    thread = reviews.set_resolved(session=session, actor=actor, comment=c, resolved=resolved, now=now)
    flash(request, "Thread resolved." if resolved else "Thread reopened.", "success")
    return redirect(_back(pm.incident_id, f"comment-{thread.id}"))


@router.post("/reviews")
def request_review(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                   now: NowDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    ids = [i for i in (_int(str(v)) for v in form.getlist("reviewer_ids")) if i is not None]
    try:
        rows = reviews.request_review(session=session, actor=actor, pm=pm, reviewer_ids=ids, now=now)
    except (ValidationFailed, InvalidState) as exc:
        db.rollback(session)
        flash(request, exc.detail, "error")
        return redirect(_back(incident_id, "review"))
    flash(request, "Review requested from " + ", ".join(r.reviewer for r in rows) + ".", "success")
    return redirect(_back(incident_id, "review"))


@router.post("/reviews/decision")
def decide(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    try:
        row = reviews.decide(session=session, actor=actor, pm=pm, decision=field(form, "decision"),
                             note=field(form, "note"), now=now)
    except (ValidationFailed, InvalidState) as exc:
        db.rollback(session)
        flash(request, exc.detail, "error")
        return redirect(_back(incident_id, "review"))
    flash(request, f"You approved version {pm.version}." if row.state == "approved" else "You asked for changes.",
          "success")
    return redirect(_back(incident_id, "review"))


def page_context(*, session, actor, pm) -> dict:
    """What the document page shows of review and comments."""
    summary = reviews.summary(session=session, pm=pm)
    me = next((r for r in summary["reviewers"] if r["user_id"] == actor.user_id), None)
    members = [m for m in orgs.list_members(session=session, org_id=pm.org_id) if can(m.role, Action.POSTMORTEM_WRITE)]
    return {"review": {**summary, "me": me,
                       "can_request": summary["mode"] != "off" and can(actor.role, Action.POSTMORTEM_WRITE),
                       "candidates": [{"user_id": m.user_id, "label": orgs.actor_for(m).label, "role": m.role}
                                      for m in members]},
            "threads": reviews.threads(session=session, pm=pm),
            "can_comment": can(actor.role, Action.WRITE_INCIDENTS)}
