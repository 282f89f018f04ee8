"""Organization endpoints of the JSON API: settings, usage, members, invitations, tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail.clock import iso
from blametrail.errors import ValidationFailed
from blametrail.orgs import invitations
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/org", tags=["organization"])


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ai_enabled: bool


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""


class MemberCreate(BaseModel):
    """An invitation: the invitee accepts it and, for a new account, chooses their own password."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    role: str = "member"
    name: str = Field("", max_length=200)
    password: str | None = Field(None, description="Not accepted: only the account's owner sets its password.")


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str


def member_read(m) -> dict:
    return {"user_id": m.user_id, "email": m.user.email, "name": m.user.name, "role": m.role,
            "joined_at": iso(m.created_at)}


def invitation_read(inv, *, now, link: str | None = None, existing_account: bool | None = None) -> dict:
    out = {"id": inv.id, "email": inv.email, "role": inv.role, "name": inv.name, "invited_by": inv.invited_by,
           "created_at": iso(inv.created_at), "expires_at": iso(inv.expires_at),
           "status": "pending" if inv.expires_at > now else "expired"}
    if link is not None:
        out |= {"invite_url": link, "existing_account": existing_account}
    return out


def invite_link(public_url: str, raw: str) -> str:
    """The one-time link an invitee opens (shown once; only the token's hash is stored)."""
    return f"{public_url.rstrip('/')}/invite/{raw}"


def settings_read(org) -> dict:
    return {"slug": org.slug, "name": org.name, "plan": org.plan, "ai_enabled": org.ai_enabled}


@router.get("/settings")
def get_settings(actor: ApiActor, session: SessionDep):
    return settings_read(orgs.get_org(session=session, org_id=actor.org_id))


@router.patch("/settings")
def patch_settings(data: SettingsPatch, actor: ApiActor, session: SessionDep):
    require(actor.role, Action.ORG_SETTINGS)
    return settings_read(orgs.set_ai_enabled(session=session, org_id=actor.org_id, enabled=data.ai_enabled))


@router.get("/usage")
def get_usage(actor: ApiActor, session: SessionDep, now: NowDep):
    u = orgs.usage(session=session, org=orgs.get_org(session=session, org_id=actor.org_id), now=now)
    return {"plan": u["plan"], "month": u["month"], "used": u["used"], "limit": u["limit"], "resets_at": iso(u["resets_at"])}


@router.get("/members")
def list_members(actor: ApiActor, session: SessionDep):
    return [member_read(m) for m in orgs.list_members(session=session, org_id=actor.org_id)]


@router.get("/tokens")
def list_tokens(actor: ApiActor, session: SessionDep):
    user_id = None if actor.role in ("owner", "admin") else actor.user_id
    return [{"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": iso(t.created_at),
             "last_used_at": iso(t.last_used_at), "revoked_at": iso(t.revoked_at)} for t in orgs.list_tokens(session=session, org_id=actor.org_id, user_id=user_id)]


@router.post("/tokens", status_code=201)
def create_token(actor: ApiActor, session: SessionDep, now: NowDep, data: TokenCreate | None = None):
    """Create a token for the calling user; the raw value is shown only in this response."""
    m = orgs.get_membership_by_user(session=session, org_id=actor.org_id, user_id=actor.user_id)
    t, raw = orgs.create_token(session=session, membership=m, name=(data.name if data else "") or "api", now=now)
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "token": raw, "created_at": iso(t.created_at)}


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    own = [t.id for t in orgs.list_tokens(session=session, org_id=actor.org_id, user_id=actor.user_id)]
    if token_id not in own:
        require(actor.role, Action.MANAGE)
    t = orgs.revoke_token(session=session, org_id=actor.org_id, token_id=token_id, now=now)
    return {"id": t.id, "revoked_at": iso(t.revoked_at)}


@router.post("/members", status_code=201)
def add_member(data: MemberCreate, actor: ApiActor, session: SessionDep, now: NowDep, rt: RuntimeDep):
    """Invite someone (owner/admin; only an owner may grant the owner role); the invite link is in this response only.

    Nobody becomes a member until they accept: a new person through the link (choosing their own password), someone
    with an account after signing in.
    """
    orgs.check_grant(by_role=actor.role, role=data.role)
    if data.password is not None:
        raise ValidationFailed("Admins cannot set passwords: the invitee chooses their own through the invitation "
                               "link (an operator can use `blametrail user set-password`).", errors=[
                                   {"loc": ["body", "password"], "msg": "not accepted"}])
    inv, raw, existing = invitations.invite(
        session=session, actor=actor, email=data.email, role=data.role, name=data.name, now=now,
        ttl=timedelta(hours=rt.settings.invitation_ttl_hours))
    return invitation_read(inv, now=now, link=invite_link(rt.settings.public_url, raw), existing_account=existing)


@router.get("/invitations")
def list_invitations(actor: ApiActor, session: SessionDep, now: NowDep):
    """Pending invitations of the organization (owner/admin)."""
    require(actor.role, Action.MANAGE)
    return [invitation_read(i, now=now) for i in invitations.list_for_org(session=session, org_id=actor.org_id)]


@router.delete("/invitations/{invitation_id}", status_code=204)
def revoke_invitation(invitation_id: IdPath, actor: ApiActor, session: SessionDep):
    """Withdraw a pending invitation; its link stops working."""
    require(actor.role, Action.MANAGE)
    invitations.revoke(session=session, org_id=actor.org_id, invitation_id=invitation_id)
    return Response(status_code=204)


@router.patch("/members/{user_id}")
def change_member(user_id: IdPath, data: MemberPatch, actor: ApiActor, session: SessionDep):
    require(actor.role, Action.MANAGE)
    return member_read(orgs.change_role(session=session, org_id=actor.org_id, user_id=user_id, role=data.role,
                                        by_role=actor.role))


@router.delete("/members/{user_id}", status_code=204)
def remove_member(user_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    require(actor.role, Action.MANAGE)
    orgs.remove_member(session=session, org_id=actor.org_id, user_id=user_id, by_role=actor.role, now=now)
    return Response(status_code=204)
