"""The live incident summary in the JSON API."""

from __future__ import annotations

from fastapi import APIRouter

from blametrail.incidents import service as incidents
from blametrail.summaries import service as summaries
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath
from blametrail.web.presenters import SummaryRead

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.get("/incidents/{incident_id}/summary", response_model=SummaryRead)
def get_summary(incident_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    summaries.revive(session=session, incident_id=incident.id, now=now)  # a refresh whose job was lost goes again
    return presenters.summary_read(session=session, incident=incident, rt=rt, now=now)
