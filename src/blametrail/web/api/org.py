"""Organization endpoints of the JSON API: settings, usage, members, tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from blametrail.clock import iso
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, NowDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/org", tags=["organization"])


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ai_enabled: bool


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str
    role: str = "member"
    name: str = ""
    password: str | None = None


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str


def member_read(m) -> dict:
    return {"user_id": m.user_id, "email": m.user.email, "name": m.user.name, "role": m.role,
            "joined_at": iso(m.created_at)}


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
def add_member(data: MemberCreate, actor: ApiActor, session: SessionDep, now: NowDep):
    """Invite a member (owner/admin; only an owner may grant the owner role)."""
    orgs.check_grant(by_role=actor.role, role=data.role)
    org = orgs.get_org(session=session, org_id=actor.org_id)
    m = orgs.create_user(session=session, email=data.email, org=org, role=data.role, password=data.password or None,
                         now=now, name=data.name)
    return member_read(m)


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
