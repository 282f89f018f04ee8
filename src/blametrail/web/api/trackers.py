"""POST|GET /api/v1/action-items/{id}/external: an action item as an issue in the team's tracker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from blametrail import netguard
from blametrail.actions import service as actions
from blametrail.errors import UpstreamFailed
from blametrail.vendors import tracker_sync
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.errors import problem
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/action-items/{item_id}/external", tags=["action items"])


class ExternalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracker: str = Field(description="jira | linear | github_issues", max_length=40)


@router.post("", status_code=201)
def create_external(item_id: IdPath, data: ExternalRequest, request: Request, actor: ApiActor, session: SessionDep,
                    rt: RuntimeDep, now: NowDep):
    """Create the issue in the tracker and link it (members and up) → 201 {tracker, key, url, status}."""
    base, _ = presenters.public_base(request, rt.settings)
    try:
        tracker_sync.push_item(session=session, actor=actor, item_id=item_id, tracker=data.tracker,
                               box=rt.secret_box, policy=netguard.policy_from(rt.settings),
                               timeout=rt.settings.vendor_timeout_seconds, base_url=base, now=now)
    except UpstreamFailed as exc:  # why: answered, not raised, so the integration keeps the failure as its status
        return problem(exc.status, exc.slug, exc.title, exc.detail)
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    return JSONResponse(tracker_sync.external_read(item), status_code=201)


@router.get("")
def get_external(item_id: IdPath, actor: ApiActor, session: SessionDep):
    """The linked issue as last synced (fields null while the item is not linked)."""
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    return tracker_sync.external_read(item)
