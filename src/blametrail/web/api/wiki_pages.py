"""POST /api/v1/incidents/{id}/postmortem/pages: the published postmortem as a Confluence or Notion page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from blametrail import netguard
from blametrail.errors import UpstreamFailed
from blametrail.vendors import pages
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.errors import problem
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/postmortem/pages", tags=["integrations"])


class PageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str


@router.post("", status_code=201)
def publish_page(incident_id: IdPath, data: PageRequest, request: Request, actor: ApiActor, session: SessionDep,
                 rt: RuntimeDep, now: NowDep):
    """Publish (201) or update (200) the page of the latest published version; owners and admins."""
    base, _ = presenters.public_base(request, rt.settings)
    try:
        out, created = pages.publish(session=session, actor=actor, incident_id=incident_id, target=data.target,
                                     box=rt.secret_box, policy=netguard.policy_from(rt.settings),
                                     timeout=rt.settings.vendor_timeout_seconds,
                                     link=f"{base}/incidents/{incident_id}/postmortem", now=now)
    except UpstreamFailed as exc:  # why: answered, not raised, so the integration keeps the failure as its status
        return problem(exc.status, exc.slug, exc.title, exc.detail)
    return JSONResponse(out, status_code=201 if created else 200)
