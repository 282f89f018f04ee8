"""The customer-facing version of a published postmortem in the JSON API (docs/api.md, "Customer-facing version")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from blametrail.clock import iso
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import customer
from blametrail.postmortems.models import CustomerVersion
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/postmortem/customer", tags=["postmortems"])


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    impact: str | None = Field(None, max_length=customer.MAX_TEXT)
    what_happened: str | None = Field(None, max_length=customer.MAX_TEXT)
    what_we_are_changing: str | None = Field(None, max_length=customer.MAX_TEXT)


def public_url(request: Request, settings, row: CustomerVersion) -> str:
    base, _ = presenters.public_base(request, settings)
    return f"{base}/public/postmortems/{row.public_token}"


def customer_read(request: Request, settings, row: CustomerVersion) -> dict:
    return {"incident_id": row.incident_id, "status": row.status, "source_version": row.source_version,
            "content": dict(row.content), "removed": list(row.removed or []),
            "public_url": public_url(request, settings, row) if row.status == "public" else None,
            "published_at": iso(row.published_at), "updated_by": row.updated_by, "updated_at": iso(row.updated_at)}


@router.get("")
def get_customer(incident_id: IdPath, request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.READ)
    return customer_read(request, rt.settings,
                         customer.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id))


@router.post("", status_code=201)
def make_customer(incident_id: IdPath, request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep,
                  now: NowDep):
    """Make the customer text from the latest published version (again: replaces the text, keeps the URL)."""
    row = customer.make(session=session, actor=actor, incident_id=incident_id, now=now)
    return customer_read(request, rt.settings, row)


@router.patch("")
def edit_customer(incident_id: IdPath, data: CustomerPatch, request: Request, actor: ApiActor, session: SessionDep,
                  rt: RuntimeDep, now: NowDep):
    row = customer.edit(session=session, actor=actor, incident_id=incident_id,
                        data=data.model_dump(exclude_unset=True), now=now)
    return customer_read(request, rt.settings, row)


@router.post("/publish")
def publish_customer(incident_id: IdPath, request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep,
                     now: NowDep):
    row = customer.publish(session=session, actor=actor, incident_id=incident_id, now=now)
    return customer_read(request, rt.settings, row)


@router.post("/withdraw")
def withdraw_customer(incident_id: IdPath, request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep,
                      now: NowDep):
    row = customer.withdraw(session=session, actor=actor, incident_id=incident_id, now=now)
    return customer_read(request, rt.settings, row)
