"""The live incident summary in the JSON API."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from blametrail.ai import summary
from blametrail.incidents import service as incidents
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1", tags=["incidents"])


class SummaryRead(BaseModel):
    status: str  # queued | ready | failed | none
    generated_at: datetime | None
    engine: str | None
    content: summary.SummaryOut | None
    error: str | None = None


def summary_for(*, session, incident, rt, now) -> dict:
    """Return the stored summary, or (before the first refresh) the built-in one computed now without storing it."""
    row = summary.find(session=session, incident_id=incident.id)
    if row is not None and row.content is not None:
        return summary.to_read(row)
    from blametrail.postmortems.drafting import build_pack

    pack = build_pack(session=session, incident=incident, lookback_minutes=rt.settings.lookback_minutes, now=now)
    live = summary.to_read(None, fallback=summary.write_summary(pack))
    if row is not None:
        live["status"] = row.status
    return live


@router.get("/incidents/{incident_id}/summary", response_model=SummaryRead)
def get_summary(incident_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return summary_for(session=session, incident=incident, rt=rt, now=now)
