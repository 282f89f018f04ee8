"""The analytics page: charts drawn on the server as accessible SVG (title, description, no script, no external
asset), each with its numbers in a table beside it; filters for the range and the grouping; CSV download."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail.errors import ValidationFailed
from blametrail.learning import analytics
from blametrail.web.api.learning import analytics_data, csv_response
from blametrail.web.deps import NowDep, PageActor, SessionDep
from blametrail.web.pages.common import render

router = APIRouter()
WIDTH, LEFT, RIGHT, ROW, TOP = 640, 170, 170, 22, 8
STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "done": "Done", "wont_do": "Won't do"}


def vbars(items: list[tuple[str, float]], *, height: int = 180) -> dict:
    """Vertical bars (one per month): geometry for the template."""
    top = max((v for _, v in items), default=0) or 1
    left, bottom, usable = 36, height - 24, WIDTH - 36 - 8
    step = usable / max(len(items), 1)
    bars = []
    for n, (label, value) in enumerate(items):
        h = (bottom - TOP) * value / top
        bars.append({"x": round(left + n * step + step * 0.15, 1), "w": round(step * 0.7, 1),
                     "y": round(bottom - h, 1), "h": round(h, 1), "label": label, "value": value,
                     "tick": label[2:] if len(items) <= 14 or n % 3 == 0 else ""})
    return {"width": WIDTH, "height": height, "left": left, "bottom": bottom, "top": TOP, "max": top, "bars": bars}


def hbars(items: list[tuple[str, float | None, float | None]], *, unit: str = "") -> dict:
    """Horizontal bars, optionally two per row (median solid, p90 light): geometry for the template."""
    shown = [i for i in items if i[1] is not None or i[2] is not None]
    top = max((max(v or 0, w or 0) for _, v, w in shown), default=0) or 1
    usable = WIDTH - LEFT - RIGHT
    rows = []
    for n, (label, value, second) in enumerate(shown):
        y = TOP + n * ROW
        rows.append({"y": y, "label": label if len(label) <= 26 else label[:25] + "…", "full": label,
                     "w": round(usable * (value or 0) / top, 1), "w2": round(usable * (second or 0) / top, 1)
                     if second is not None else None, "text": _num(value, unit), "text2": _num(second, unit)})
    return {"width": WIDTH, "height": TOP * 2 + max(len(rows), 1) * ROW, "left": LEFT, "rows": rows}


def _num(value, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "min":
        return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"
    return f"{value:g}"


def charts(data: dict) -> dict:
    """Every chart of the page from the report."""
    months = data["incidents"]["by_month"]
    groups = data["timings"]["groups"][:12]
    out = {"months": vbars([(m["month"], m["count"]) for m in months]),
           "timings": {m: hbars([(str(g["key"]), g[m]["median"], g[m]["p90"]) for g in groups], unit="min")
                       for m in analytics.MEASURES},
           "causes": hbars([(c["label"], c["count"], None) for c in data["recurring"]["causes"]]),
           "services": hbars([(s["service"], s["count"], None) for s in data["recurring"]["services"]]),
           "actions": hbars([(STATUS_LABELS[k], v, None) for k, v in data["action_items"]["by_status"].items()]),
           "survival": hbars([(s["title"], round(s["kept"] * 100, 1), None)
                              for s in data["draft_quality"]["survival"]], unit="%")}
    return out


def _form(request: Request) -> dict:
    q = request.query_params
    return {"from": (q.get("from") or "").strip()[:40], "to": (q.get("to") or "").strip()[:40],
            "group_by": (q.get("group_by") or "service").strip()[:20]}


@router.get("/analytics")
def analytics_page(request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    form = _form(request)
    try:
        data = analytics_data(session, actor, now, start=form["from"], end=form["to"], group_by=form["group_by"])
    except ValidationFailed as exc:
        return render(request, "analytics.html", {"nav": "analytics", "form": form, "errors": [exc.detail],
                                                  "data": None, "groups": analytics.GROUPS},
                      actor=actor, status_code=422)
    return render(request, "analytics.html", {
        "nav": "analytics", "form": form, "errors": [], "data": data, "charts": charts(data),
        "groups": analytics.GROUPS, "measures": analytics.MEASURES, "measure_labels": analytics.MEASURE_LABELS,
        "status_labels": STATUS_LABELS, "csv_query": str(request.url.query)}, actor=actor)


@router.get("/analytics.csv")
def analytics_page_csv(request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    form = _form(request)
    return csv_response(analytics_data(session, actor, now, start=form["from"], end=form["to"],
                                       group_by=form["group_by"]))
