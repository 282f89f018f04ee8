"""Learning across incidents in the JSON API: similar incidents (and analytics, below)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from blametrail.clock import iso
from blametrail.incidents import service as incidents
from blametrail.learning import similar as similar_incidents
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1", tags=["learning"])


def similar_read(s: similar_incidents.Similar) -> dict:
    return {"incident_id": s.incident_id, "title": s.title, "score": s.score, "reasons": list(s.reasons),
            "started_at": iso(s.started_at), "status": s.status, "severity": s.severity,
            "services": list(s.services)}


@router.get("/incidents/{incident_id}/similar")
def similar(incident_id: IdPath, actor: ApiActor, session: SessionDep, limit: int = Query(5, ge=1, le=20)):
    """The organization's incidents most like this one, best first, with what matched."""
    require(actor.role, Action.READ)
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return [similar_read(s) for s in similar_incidents.similar(session, incident, limit=limit)]
