"""Search in the JSON API: GET /api/v1/search across incidents, updates, postmortem sections and action items."""

from __future__ import annotations

from fastapi import APIRouter, Query

from blametrail.analysis import ids
from blametrail.clock import iso
from blametrail.engines.sections import SECTION_TITLES
from blametrail.learning import search as engine
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, SessionDep
from blametrail.web.pages.document import anchor

router = APIRouter(prefix="/api/v1", tags=["search"])


def hit_url(hit: engine.Hit) -> str:
    """Where a result opens in the pages."""
    if hit.kind == "update":
        return f"/incidents/{hit.incident_id}#{ids.entry_id('update', hit.ref_id)}"
    if hit.kind == "postmortem":
        return f"/incidents/{hit.incident_id}/postmortem#{anchor(hit.section)}"
    if hit.kind == "action_item":
        return f"/action-items/{hit.ref_id}"
    return f"/incidents/{hit.incident_id}"


def hit_label(hit: engine.Hit) -> str:
    """What the result is, in words: "Incident", "Update from dana@…", "Postmortem · Root cause", "Action item"."""
    if hit.kind == "update":
        return f"Update from {hit.title}" if hit.title else "Update"
    if hit.kind == "postmortem":
        return f"Postmortem · {SECTION_TITLES.get(hit.section, hit.title)}"
    return {"action_item": "Action item", "incident": "Incident"}[hit.kind]


def hit_read(hit: engine.Hit) -> dict:
    return {"kind": hit.kind, "incident_id": hit.incident_id,
            "title": hit.title if hit.kind == "action_item" else hit.incident_title,
            "snippet": hit.snippet, "score": hit.score, "ref_id": hit.ref_id, "section": hit.section or None,
            "label": hit_label(hit), "incident_title": hit.incident_title, "url": hit_url(hit), "at": iso(hit.at)}


def filters_from(*, kind, service, severity, status, start, end) -> engine.Filters:
    return engine.Filters(kind=kind or None, service=(service or "").strip() or None, severity=severity or None,
                          status=status or None, start=engine.day_bound(start, "from"),
                          end=engine.day_bound(end, "to", end=True))


@router.get("/search")
def search(actor: ApiActor, session: SessionDep, q: str = Query("", max_length=engine.MAX_QUERY),
           kind: str | None = None, service: str | None = None, severity: str | None = None,
           status: str | None = None, start: str | None = Query(None, alias="from"),
           end: str | None = Query(None, alias="to"), limit: int = Query(20, ge=1, le=engine.MAX_LIMIT),
           offset: int = Query(0, ge=0, le=10_000)):
    """Ranked full-text matches in your organization; `snippet` is HTML (text escaped, matches in <mark>)."""
    require(actor.role, Action.READ)
    hits = engine.search(session, org_id=actor.org_id, query=q, limit=limit, offset=offset,
                         filters=filters_from(kind=kind, service=service, severity=severity, status=status,
                                              start=start, end=end))
    return {"items": [hit_read(h) for h in hits], "next_offset": offset + limit if len(hits) == limit else None}
