"""Settings pages for people: members and roles (invite, change role, remove), invitations, API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from blametrail import db
from blametrail.errors import Conflict, Forbidden, ValidationFailed
from blametrail.orgs import invitations
from blametrail.orgs import service as orgs
from blametrail.orgs.models import ROLES
from blametrail.orgs.permissions import Action, can, require
from blametrail.web import presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm
from blametrail.web.pages.common import FormDep, field, flash, redirect, render
from blametrail.web.params import IdPath

router = APIRouter(prefix="/settings")


def _grantable(role: str) -> tuple[str, ...]:
    """The roles this role may hand out (only owners hand out owner)."""
    if role == "owner":
        return ROLES
    if role == "admin":
        return tuple(r for r in ROLES if r != "owner")
    return ()


def _members_page(request: Request, *, session, actor, now, status_code: int = 200, invite: dict | None = None,
                  errors: list[str] | None = None, invited: dict | None = None):
    members = orgs.list_members(session=session, org_id=actor.org_id)
    owners = sum(1 for m in members if m.role == "owner")
    manage = can(actor.role, Action.MANAGE)
    rows = []
    for m in members:
        touchable = manage and (actor.role == "owner" or m.role != "owner")
        last_owner = m.role == "owner" and owners <= 1
        rows.append({"m": m, "can_change": touchable and not last_owner, "can_remove": touchable and not last_owner,
                     "last_owner": last_owner, "me": m.user_id == actor.user_id})
    return render(request, "people/members.html", {
        "nav": "settings", "rows": rows, "manage": manage, "grantable": _grantable(actor.role),
        "invite": invite or {"role": "member"}, "errors": errors or [], "invited": invited, "now": now,
        "invitation_hours": request.app.state.runtime.settings.invitation_ttl_hours,
        "invitations": invitations.list_for_org(session=session, org_id=actor.org_id) if manage else [],
    }, actor=actor, status_code=status_code)


@router.get("/members")
def members_page(request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    return _members_page(request, session=session, actor=actor, now=now)


@router.post("/members")
def members_invite(request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep,
                   rt: RuntimeDep):
    """Invite someone; the one-time link is shown in this response only (nobody joins until they accept)."""
    require(actor.role, Action.MANAGE)
    invite = {k: field(form, k) for k in ("email", "name", "role")}
    try:
        inv, raw, existing = invitations.invite(
            session=session, actor=actor, email=invite["email"], role=invite["role"], name=invite["name"], now=now,
            ttl=timedelta(hours=rt.settings.invitation_ttl_hours))
    except (ValidationFailed, Conflict, Forbidden) as exc:
        db.rollback(session)
        return _members_page(request, session=session, actor=actor, now=now, status_code=exc.status, invite=invite,
                             errors=[exc.detail])
    invited = {"email": inv.email, "role": inv.role, "link": presenters.invite_link(presenters.public_base(request, rt.settings)[0], raw),
               "existing": existing, "expires_at": inv.expires_at}
    return _members_page(request, session=session, actor=actor, now=now, status_code=201, invited=invited)


@router.post("/invitations/{invitation_id}/revoke")
def invitations_revoke(invitation_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    require(actor.role, Action.MANAGE)
    inv = invitations.revoke(session=session, org_id=actor.org_id, invitation_id=invitation_id)
    flash(request, f"The invitation of {inv.email} was withdrawn; its link no longer works.", "success")
    return redirect("/settings/members")


@router.post("/members/{user_id}/role")
def members_role(user_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                 now: NowDep):
    require(actor.role, Action.MANAGE)
    try:
        m = orgs.change_role(session=session, org_id=actor.org_id, user_id=user_id, role=field(form, "role"),
                             by_role=actor.role)
    except (ValidationFailed, Conflict) as exc:
        db.rollback(session)
        return _members_page(request, session=session, actor=actor, now=now, status_code=exc.status,
                             errors=[exc.detail])
    flash(request, f"{m.user.email} is now {m.role}.", "success")
    return redirect("/settings/members")


@router.post("/members/{user_id}/remove")
def members_remove(user_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                   now: NowDep):
    require(actor.role, Action.MANAGE)
    m = orgs.get_membership_by_user(session=session, org_id=actor.org_id, user_id=user_id)
    email = m.user.email
    if not confirm.confirmed(form):  # why: asked first (web/pages/confirm.py); app.js asks in a dialog
        return confirm.ask(request, actor=actor, title=f"Remove {email}?", nav="settings",
                           question=f"{email} loses access to this organization at once, and their API tokens are "
                                    "revoked.", action=f"/settings/members/{user_id}/remove", button="Remove",
                           cancel_url="/settings/members")
    try:
        orgs.remove_member(session=session, org_id=actor.org_id, user_id=user_id, by_role=actor.role, now=now)
    except Conflict as exc:
        db.rollback(session)
        return _members_page(request, session=session, actor=actor, now=now, status_code=exc.status,
                             errors=[exc.detail])
    flash(request, f"{email} was removed from this organization; their API tokens were revoked.", "success")
    return redirect("/settings/members")


def _tokens_page(request: Request, *, session, actor, created: dict | None = None, status_code: int = 200,
                 errors: list[str] | None = None):
    everyone = can(actor.role, Action.MANAGE)
    tokens = orgs.list_tokens(session=session, org_id=actor.org_id, user_id=None if everyone else actor.user_id)
    owners = {m.user_id: m.user.email for m in orgs.list_members(session=session, org_id=actor.org_id)}
    return render(request, "people/tokens.html", {
        "nav": "settings", "tokens": tokens, "owners": owners, "everyone": everyone, "created": created,
        "errors": errors or [],
    }, actor=actor, status_code=status_code)


@router.get("/tokens")
def tokens_page(request: Request, actor: PageActor, session: SessionDep):
    return _tokens_page(request, session=session, actor=actor)


@router.post("/tokens")
def tokens_create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    """Create a token for the logged-in user; its value is in this response only (never stored, never shown again)."""
    name = field(form, "name") or "api"
    m = orgs.get_membership_by_user(session=session, org_id=actor.org_id, user_id=actor.user_id)
    token, raw = orgs.create_token(session=session, membership=m, name=name, now=now)
    return _tokens_page(request, session=session, actor=actor, created={"id": token.id, "name": token.name, "raw": raw},
                        status_code=201)


@router.post("/tokens/{token_id}/revoke")
def tokens_revoke(token_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    own = {t.id for t in orgs.list_tokens(session=session, org_id=actor.org_id, user_id=actor.user_id)}
    if token_id not in own:
        everyone = {t.id for t in orgs.list_tokens(session=session, org_id=actor.org_id)}
        if token_id in everyone:
            require(actor.role, Action.MANAGE)
    token = orgs.revoke_token(session=session, org_id=actor.org_id, token_id=token_id, now=now)  # foreign ids: 404
    flash(request, f"Token {token.name!r} ({token.prefix}…) revoked.", "success")
    return redirect("/settings/tokens")
