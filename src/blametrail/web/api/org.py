"""Organization endpoints of the JSON API: settings, usage, members, invitations, tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail.clock import iso
from blametrail.errors import ValidationFailed
from blametrail.orgs import invitations, templates
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import reviews
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/org", tags=["organization"])


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ai_enabled: bool | None = None
    public_postmortems: bool | None = Field(None, description="serve customer-facing postmortems at their addresses")
    review_mode: str | None = Field(None, description="off | optional | required (publishing waits for an approval)")


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


class TemplatePut(BaseModel):
    """The whole template; parts left out are emptied. `version` (optional) guards against overwriting a newer one."""

    model_config = ConfigDict(extra="forbid")
    service_owners: dict[str, str] = Field(default_factory=dict, description="service → the team that owns its fixes")
    section_instructions: dict[str, str] = Field(default_factory=dict,
                                                 description="section key → an instruction drafts follow")
    # why: shapes checked by orgs.templates.put, which names the exact item at fault (extra_sections.1.key)
    section_order: Any = Field(None, description="section keys (built-in and extra) in the order pages show them")
    extra_sections: Any = Field(None, description="[{key, title, instruction?}] sections the organization adds")
    severity_definitions: Any = Field(None, description="[{severity, meaning, rules}]; empty = the built-in ones")
    version: int | None = Field(None, ge=0, le=2**31 - 1)


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str


@router.get("/settings")
def get_settings(actor: ApiActor, session: SessionDep):
    return presenters.org_settings_read(orgs.get_org(session=session, org_id=actor.org_id))


@router.patch("/settings")
def patch_settings(data: SettingsPatch, actor: ApiActor, session: SessionDep):
    require(actor.role, Action.ORG_SETTINGS)
    if data.ai_enabled is None and data.public_postmortems is None and data.review_mode is None:
        raise ValidationFailed("Give ai_enabled, public_postmortems or review_mode.",
                               [{"loc": ["body"], "msg": "nothing to change"}])
    org = orgs.get_org(session=session, org_id=actor.org_id)
    if data.ai_enabled is not None:
        org = orgs.set_ai_enabled(session=session, org_id=actor.org_id, enabled=data.ai_enabled)
    if data.public_postmortems is not None:
        org = orgs.set_public_postmortems(session=session, org_id=actor.org_id, enabled=data.public_postmortems)
    if data.review_mode is not None:
        org = reviews.set_mode(session=session, org_id=actor.org_id, mode=data.review_mode)
    return presenters.org_settings_read(org)


@router.get("/template")
def get_template(actor: ApiActor, session: SessionDep):
    """Return the organization's postmortem template (service owners, section instructions)."""
    return templates.to_read(session, actor.org_id)


@router.put("/template")
def put_template(data: TemplatePut, actor: ApiActor, session: SessionDep, now: NowDep):
    """Replace the template (owners and admins)."""
    templates.put(session=session, actor=actor, now=now, version=data.version,
                  data=data.model_dump(exclude={"version"}))
    return templates.to_read(session, actor.org_id)


@router.get("/usage")
def get_usage(actor: ApiActor, session: SessionDep, now: NowDep):
    u = orgs.usage(session=session, org=orgs.get_org(session=session, org_id=actor.org_id), now=now)
    return presenters.usage_read(u)


@router.get("/members")
def list_members(actor: ApiActor, session: SessionDep):
    return [presenters.member_read(m) for m in orgs.list_members(session=session, org_id=actor.org_id)]


@router.get("/tokens")
def list_tokens(actor: ApiActor, session: SessionDep):
    user_id = None if actor.role in ("owner", "admin") else actor.user_id
    return [presenters.token_read(t) for t in orgs.list_tokens(session=session, org_id=actor.org_id, user_id=user_id)]


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
def add_member(request: Request, data: MemberCreate, actor: ApiActor, session: SessionDep, now: NowDep, rt: RuntimeDep):
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
    link = presenters.invite_link(presenters.public_base(request, rt.settings)[0], raw)
    return presenters.invitation_read(inv, now=now, link=link, existing_account=existing)


@router.get("/invitations")
def list_invitations(actor: ApiActor, session: SessionDep, now: NowDep):
    """Pending invitations of the organization (owner/admin)."""
    require(actor.role, Action.MANAGE)
    rows = invitations.list_for_org(session=session, org_id=actor.org_id)
    return [presenters.invitation_read(i, now=now) for i in rows]


@router.delete("/invitations/{invitation_id}", status_code=204)
def revoke_invitation(invitation_id: IdPath, actor: ApiActor, session: SessionDep):
    """Withdraw a pending invitation; its link stops working."""
    require(actor.role, Action.MANAGE)
    invitations.revoke(session=session, org_id=actor.org_id, invitation_id=invitation_id)
    return Response(status_code=204)


@router.patch("/members/{user_id}")
def change_member(user_id: IdPath, data: MemberPatch, actor: ApiActor, session: SessionDep):
    require(actor.role, Action.MANAGE)
    membership = orgs.change_role(session=session, org_id=actor.org_id, user_id=user_id, role=data.role,
                                  by_role=actor.role)
    return presenters.member_read(membership)


@router.delete("/members/{user_id}", status_code=204)
def remove_member(user_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    require(actor.role, Action.MANAGE)
    orgs.remove_member(session=session, org_id=actor.org_id, user_id=user_id, by_role=actor.role, now=now)
    return Response(status_code=204)
