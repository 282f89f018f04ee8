"""Organization settings page: plan and usage, the AI switch (owner only), links to the drafting and integration
pages, members."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail.errors import ValidationFailed
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, can, require
from blametrail.postmortems import reviews
from blametrail.web.deps import NowDep, PageActor, SessionDep
from blametrail.web.pages import confirm
from blametrail.web.pages.common import FormDep, field, flash, redirect, render

router = APIRouter()
_TRUE, _FALSE = ("true", "on", "1", "yes"), ("false", "off", "0", "no")


@router.get("/settings")
def settings_page(request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    org = orgs.get_org(session=session, org_id=actor.org_id)
    return render(request, "settings.html", {
        "org": org, "usage": orgs.usage(session=session, org=org, now=now),
        "members": orgs.list_members(session=session, org_id=actor.org_id),
        "can_manage": can(actor.role, Action.MANAGE),
    }, actor=actor)


@router.post("/settings/ai")
def settings_ai(request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    require(actor.role, Action.ORG_SETTINGS)
    value = field(form, "ai_enabled").lower()
    if value not in _TRUE + _FALSE:
        raise ValidationFailed("Choose whether AI features are on or off.")
    if value in _FALSE and not confirm.confirmed(form):  # why: asked first (web/pages/confirm.py)
        return confirm.ask(request, actor=actor, title="Turn AI features off?", nav="settings",
                           question="Nothing is drafted when incidents resolve, and Generate is hidden for everyone, "
                                    "until an owner turns them on again.", action="/settings/ai",
                           button="Turn AI features off", cancel_url="/settings", fields={"ai_enabled": "false"})
    org = orgs.set_ai_enabled(session=session, org_id=actor.org_id, enabled=value in _TRUE)
    flash(request, "AI features are on: postmortems are drafted when incidents resolve." if org.ai_enabled
          else "AI features are off: nothing is drafted and Generate is hidden.", "success")
    return redirect("/settings")


@router.post("/settings/public-postmortems")
def settings_public(request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    require(actor.role, Action.ORG_SETTINGS)
    value = field(form, "public_postmortems").lower()
    if value not in _TRUE + _FALSE:
        raise ValidationFailed("Choose whether public postmortems are on or off.")
    if value in _TRUE and not confirm.confirmed(form):  # why: texts made public become readable without signing in
        return confirm.ask(request, actor=actor, title="Allow public postmortems?", nav="settings",
                           question="Customer-facing texts that owners and admins make public become readable by "
                                    "anyone with their address, without signing in.",
                           action="/settings/public-postmortems", button="Allow public postmortems",
                           cancel_url="/settings", fields={"public_postmortems": "true"})
    org = orgs.set_public_postmortems(session=session, org_id=actor.org_id, enabled=value in _TRUE)
    flash(request, "Public postmortems are allowed: customer-facing texts made public are served at their addresses."
          if org.public_postmortems else "Public postmortems are off: their addresses show nothing.", "success")
    return redirect("/settings")


@router.post("/settings/review")
def settings_review(request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    require(actor.role, Action.ORG_SETTINGS)
    org = reviews.set_mode(session=session, org_id=actor.org_id, mode=field(form, "review_mode"))
    flash(request, {"off": "Review is off.", "optional": "Review is optional: members can ask for it.",
                    "required": "Review is required: publishing waits for an approval."}[org.review_mode], "success")
    return redirect("/settings")
