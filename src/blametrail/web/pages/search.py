"""The search page: the nav's search box lands here; ranked results with highlighted snippets and filters."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail.errors import ValidationFailed
from blametrail.learning import search as engine
from blametrail.learning.models import KINDS
from blametrail.web.api.search import filters_from, hit_read
from blametrail.web.deps import PageActor, SessionDep
from blametrail.web.pages.common import render

router = APIRouter()
KIND_LABELS = {"incident": "Incidents", "update": "Updates", "postmortem": "Postmortems", "action_item": "Action items"}
PAGE = 20


@router.get("/search")
def search_page(request: Request, actor: PageActor, session: SessionDep):
    q = request.query_params
    form = {k: (q.get(k) or "").strip()[:engine.MAX_QUERY + 1] for k in
            ("q", "kind", "service", "severity", "status", "from", "to")}
    offset = int(q["offset"]) if (q.get("offset") or "").isdigit() and int(q["offset"]) <= 10_000 else 0
    errors: list[str] = []
    items: list[dict] = []
    try:
        hits = engine.search(session, org_id=actor.org_id, query=form["q"], limit=PAGE, offset=offset,
                             filters=filters_from(kind=form["kind"], service=form["service"],
                                                  severity=form["severity"], status=form["status"],
                                                  start=form["from"], end=form["to"]))
        items = [hit_read(h) for h in hits]
    except ValidationFailed as exc:
        errors = [exc.detail]
    more = None
    if len(items) == PAGE:
        more = request.url.include_query_params(offset=offset + PAGE)
    return render(request, "search.html", {
        "nav": "search", "form": form, "items": items, "errors": errors, "kinds": KINDS, "kind_labels": KIND_LABELS,
        "severities": engine.SEVERITIES, "offset": offset, "more": str(more) if more else None,
        "first": str(request.url.remove_query_params("offset")),
        "filtered": any(form[k] for k in form if k != "q")}, actor=actor, status_code=422 if errors else 200)
