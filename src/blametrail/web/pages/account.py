"""One's own account: organizations and the switcher, pending invitations, changing one's password; invitation links."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from blametrail import db
from blametrail.errors import Conflict, NotFound, RateLimited, Unauthenticated, ValidationFailed
from blametrail.orgs import invitations
from blametrail.orgs import service as orgs
from blametrail.orgs.models import User
from blametrail.web.deps import SESSION_KEY, MaybePageActor, NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.auth import _start_login, verify_password_attempt
from blametrail.web.pages.common import FormDep, field, flash, redirect, render
from blametrail.web.params import IdPath

router = APIRouter()


def _account_page(request: Request, *, session, actor, now, status_code: int = 200, errors: list[str] | None = None,
                  notice: str | None = None):
    user = session.get(User, actor.user_id)
    return render(request, "account.html", {
        "nav": "account", "user": user, "memberships": orgs.memberships_of(session=session, user_id=actor.user_id),
        "pending": invitations.pending_for(session=session, email=user.email, now=now), "errors": errors or [],
        "notice": notice,
    }, actor=actor, status_code=status_code)


@router.get("/account")
def account_page(request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    return _account_page(request, session=session, actor=actor, now=now)


@router.post("/account/password")
def account_password(request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    """Change one's own password: the current one is required; one's other login sessions end, this one stays."""
    new = form.get("new_password") if isinstance(form.get("new_password"), str) else ""
    if new != (form.get("confirm_password") or ""):
        return _account_page(request, session=session, actor=actor, now=now, status_code=422,
                             errors=["The new password and its confirmation differ."])
    try:
        orgs.change_own_password(session=session, user_id=actor.user_id, current=str(form.get("current_password") or ""),
                                 new=new, keep_session=request.session.get(SESSION_KEY, ""))
    except ValidationFailed as exc:
        db.rollback(session)
        return _account_page(request, session=session, actor=actor, now=now, status_code=422, errors=[exc.detail])
    flash(request, "Your password was changed; your other sessions were signed out (API tokens keep working).",
          "success")
    return redirect("/account")


@router.post("/account/switch")
def account_switch(request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    """Move this browser's session to another of the user's organizations (not a member: 404)."""
    try:
        org_id = int(field(form, "org_id"))
    except ValueError:
        raise NotFound("Not a member of this organization.") from None
    if not 1 <= org_id < 2**31:
        raise NotFound("Not a member of this organization.")
    m = orgs.switch_org(session=session, raw=request.session.get(SESSION_KEY, ""), user_id=actor.user_id,
                        org_id=org_id)
    flash(request, f"You are now working in {m.org.name} as {m.role}.", "success")
    return redirect("/incidents")


@router.post("/account/invitations/{org_id}/accept")
def account_accept(org_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    """Accept the pending invitation from an organization, and switch to it."""
    user = session.get(User, actor.user_id)
    inv = invitations.pending_from(session=session, user=user, org_id=org_id, now=now)
    m = invitations.accept(session=session, inv=inv, user=user, now=now)
    orgs.switch_org(session=session, raw=request.session.get(SESSION_KEY, ""), user_id=actor.user_id,
                    org_id=m.org_id)
    flash(request, f"You joined {m.org.name} as {m.role}.", "success")
    return redirect("/incidents")


@router.post("/account/invitations/{org_id}/decline")
def account_decline(org_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    user = session.get(User, actor.user_id)
    inv = invitations.pending_from(session=session, user=user, org_id=org_id, now=now)
    name = inv.org.name
    invitations.decline(session=session, inv=inv)
    flash(request, f"You declined the invitation to {name}.", "info")
    return redirect("/account")


# --- the invitation link -----------------------------------------------------------------------------------------


def _invite_context(session, inv, actor) -> dict:
    """Which form the link shows: join as the signed-in user, sign in with one's password, or create an account."""
    signed_in = session.get(User, actor.user_id) if actor else None
    has_account = session.scalar(select(User.id).where(User.email == inv.email)) is not None
    mode = ("join" if signed_in and signed_in.email == inv.email else "other" if signed_in
            else "password" if has_account else "create")
    return {"inv": inv, "mode": mode, "signed_in": signed_in}


def _invite_page(request, token: str, ctx: dict, actor, *, status_code: int = 200, error: str | None = None,
                 values: dict | None = None):
    return render(request, "invite.html", {**ctx, "token": token, "error": error, "values": values or {},
                                           "nav": "account"}, actor=actor, status_code=status_code)


@router.get("/invite/{token}")
def invite_page(token: str, request: Request, actor: MaybePageActor, session: SessionDep, now: NowDep):
    inv = invitations.by_token(session=session, raw=token, now=now)
    return _invite_page(request, token, _invite_context(session, inv, actor), actor)


@router.post("/invite/{token}")
def invite_accept(token: str, request: Request, form: FormDep, actor: MaybePageActor, session: SessionDep,
                  rt: RuntimeDep, now: NowDep):
    """Accept an invitation: as the signed-in invitee, with the invitee's password, or by creating the account."""
    inv = invitations.by_token(session=session, raw=token, now=now)
    ctx = _invite_context(session, inv, actor)
    values = {"name": field(form, "name")}
    password = str(form.get("password") or "")
    email = inv.email  # why: read before the throttle commits and expires the row
    try:
        if ctx["mode"] == "other":
            raise Conflict(f"This invitation is for {inv.email}, but you are signed in as "
                           f"{ctx['signed_in'].email}. Log out, then open the link again.")
        if ctx["mode"] == "join":
            m = invitations.accept(session=session, inv=inv, user=ctx["signed_in"], now=now)
        elif ctx["mode"] == "password":
            user = verify_password_attempt(request, session=session, rt=rt, now=now, email=email, password=password)
            inv = invitations.by_token(session=session, raw=token, now=now)  # why: the throttle committed
            m = invitations.accept(session=session, inv=inv, user=user, now=now)
        else:
            if password != (form.get("confirm_password") or ""):
                raise ValidationFailed("The password and its confirmation differ.")
            m = invitations.accept_new_account(session=session, inv=inv, name=values["name"], password=password,
                                               now=now)
    except RateLimited as exc:
        return _invite_page(request, token, ctx, actor, status_code=429, error=exc.detail, values=values)
    except Unauthenticated as exc:  # why: no rollback, the failed attempt stays counted by the login throttle
        return _invite_page(request, token, ctx, actor, status_code=400, error=exc.detail, values=values)
    except (ValidationFailed, Conflict) as exc:
        db.rollback(session)
        return _invite_page(request, token, ctx, actor, status_code=exc.status, error=exc.detail, values=values)
    if actor is not None:
        orgs.switch_org(session=session, raw=request.session.get(SESSION_KEY, ""), user_id=actor.user_id,
                        org_id=m.org_id)
    else:
        _start_login(request, session=session, rt=rt, membership=m, now=now)
    flash(request, f"Welcome to {m.org.name}: you joined as {m.role}.", "success")
    return redirect("/incidents")
