"""Organization endpoints of the JSON API: settings, usage, members, tokens."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from blametrail.clock import iso
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, NowDep, SessionDep

router = APIRouter(prefix="/api/v1/org", tags=["organization"])


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ai_enabled: bool


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""


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
    return [{"email": m.user.email, "name": m.user.name, "role": m.role, "joined_at": iso(m.created_at)}
            for m in orgs.list_members(session=session, org_id=actor.org_id)]


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
def revoke_token(token_id: int, actor: ApiActor, session: SessionDep, now: NowDep):
    own = [t.id for t in orgs.list_tokens(session=session, org_id=actor.org_id, user_id=actor.user_id)]
    if token_id not in own:
        require(actor.role, Action.MANAGE)
    t = orgs.revoke_token(session=session, org_id=actor.org_id, token_id=token_id, now=now)
    return {"id": t.id, "revoked_at": iso(t.revoked_at)}
