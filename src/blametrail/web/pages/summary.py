"""The live summary card of the incident page and its htmx fragment."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail.incidents import service as incidents
from blametrail.summaries import service as summaries
from blametrail.web import citations, presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.common import render
from blametrail.web.params import IdPath

router = APIRouter()
POLL_SECONDS = 5


def summary_context(*, session, incident, rt, now) -> dict:
    """Return what the summary card needs: the summary, and whether it keeps polling (while the incident is open or
    a refresh is pending, so a resolved incident's card also shows the rebuilt summary when it lands)."""
    # why: a refresh whose job was lost (a restart with an in-memory queue) is asked again by whoever looks at it,
    # without waiting for the sweep
    summaries.revive(session=session, incident_id=incident.id, now=now)
    data = presenters.summary_read(session=session, incident=incident, rt=rt, now=now)
    pending = data["status"] in summaries.PENDING
    # why: the summary cites like the postmortem does (labels, previews), never as raw ids or in-page anchors
    cite = citations.citer_for(session, org_id=incident.org_id, incident=incident, values=[data.get("content")])
    return {"summary": {**data, "incident_id": incident.id, "pending": pending, "cite": cite,
                        "polling": incident.status == "open" or pending, "poll_seconds": POLL_SECONDS}}


@router.get("/incidents/{incident_id}/summary")
def summary_fragment(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep,
                     now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    ctx = summary_context(session=session, incident=incident, rt=rt, now=now)
    return render(request, "incidents/_summary.html", ctx, actor=actor, full_page=False)
