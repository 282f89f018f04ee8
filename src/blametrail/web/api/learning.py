"""Learning across incidents in the JSON API: similar incidents, analytics (JSON and CSV)."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Query, Response

from blametrail.clock import iso
from blametrail.incidents import service as incidents
from blametrail.learning import analytics
from blametrail.learning import search as search_engine
from blametrail.learning import similar as similar_incidents
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, NowDep, SessionDep
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


def analytics_data(session, actor, now, *, start: str | None, end: str | None, group_by: str) -> dict:
    """The analytics report for the caller's organization (shared by the API, the CSV and the page)."""
    require(actor.role, Action.READ)
    when = analytics.range_from(search_engine.day_bound(start, "from"), search_engine.day_bound(end, "to", end=True),
                                now)
    return analytics.report(session, org_id=actor.org_id, when=when, group_by=group_by or "service",
                            today=now.date())


@router.get("/analytics")
def analytics_json(actor: ApiActor, session: SessionDep, now: NowDep, start: str | None = Query(None, alias="from"),
                   end: str | None = Query(None, alias="to"), group_by: str = "service"):
    """Incident counts, timings (median and p90 minutes) by service, severity or month, recurring causes and
    services, action-item completion and overdue, and draft quality, for incidents that started in the range."""
    data = analytics_data(session, actor, now, start=start, end=end, group_by=group_by)
    return {**data, "range": {"from": iso(data["range"]["from"]), "to": iso(data["range"]["to"])}}


@router.get("/analytics.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The timing table as CSV"}})
def analytics_csv(actor: ApiActor, session: SessionDep, now: NowDep, start: str | None = Query(None, alias="from"),
                  end: str | None = Query(None, alias="to"), group_by: str = "service"):
    """The timing table as CSV: one row per group and one for all incidents."""
    data = analytics_data(session, actor, now, start=start, end=end, group_by=group_by)
    return csv_response(data)


def csv_response(data: dict) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in analytics.csv_rows(data):
        writer.writerow([_cell(v) for v in row])
    name = f"blametrail-analytics-{data['group_by']}-{data['range']['from']:%Y%m%d}-{data['range']['to']:%Y%m%d}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _cell(value):
    # why: a service name starting with = + - @ would run as a formula in a spreadsheet (CSV injection)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
