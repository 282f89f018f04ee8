"""Evidence pages: what a citation (upd_3, deploy_2, metric_1…) points at, and the print-ready postmortem.

Citations in the timeline and the postmortem's sections link to `/incidents/{id}/evidence/{evidence_id}`:
timeline rows (updates, status changes, monitor and alert events) and deploys/commits come from the database;
metric change points and log templates are read from the latest generation run's frozen evidence, because the
raw observability data is never stored. Ids that are malformed, unknown or belong to another organization or
another incident answer 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from markupsafe import Markup, escape
from sqlalchemy import select

from blametrail.alerts.models import Alert
from blametrail.analysis import ids
from blametrail.clock import to_utc
from blametrail.deploys.models import Commit, Deploy
from blametrail.errors import NotFound
from blametrail.incidents import service as incidents
from blametrail.incidents.models import TimelineEntry
from blametrail.orgs import templates as orgs_templates
from blametrail.postmortems import service as postmortems
from blametrail.web import citations, presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.common import render, templates
from blametrail.web.pages.document import sections_in_order
from blametrail.web.params import IdPath, IdQuery
from blametrail.web.pdf import pdf_response

router = APIRouter()


# --- turning citations into links (Jinja filters used by the sections macro and the timeline) ------------

def evidence_url(incident_id: int, evidence_id: str) -> str:
    parsed = ids.parse(evidence_id)
    if parsed is not None and parsed[0] == ids.INCIDENT:  # another incident (a recent one on the same service)
        return f"/incidents/{parsed[1]}"
    return f"/incidents/{int(incident_id)}/evidence/{evidence_id}"


def evidence_link(evidence_id: object, incident_id: int | None = None) -> Markup:
    """Render one evidence id as a link to its evidence page (plain code when the incident is unknown)."""
    eid = str(evidence_id or "")
    code = Markup('<code class="evidence-id">{}</code>').format(eid)
    if incident_id is None or not ids.is_id(eid):
        return code
    return Markup('<a class="evidence-link" href="{}" title="Open evidence {}">{}</a>').format(
        evidence_url(incident_id, eid), eid, code)


def cite_links(value: object, incident_id: int | None = None) -> Markup:
    """Escape text and turn every evidence id inside it into a link."""
    text = "" if value is None else str(value)
    if incident_id is None:
        return Markup(escape(text))
    out, pos = [], 0
    for m in ids.CITATION.finditer(text):
        out += [escape(text[pos:m.start()]), evidence_link(m.group(0), incident_id)]
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


templates.env.filters["evidence_link"] = evidence_link
templates.env.filters["cite_links"] = cite_links


# --- the metric chart: an inline SVG, computed here -------------------------------------------------

def metric_chart(finding: dict, *, width: int = 640, height: int = 240) -> dict | None:
    """Return the SVG geometry of a metric finding: the series polyline, the change point, before/after levels."""
    points = [(t, float(v)) for t, v in ((to_utc(p[0]), p[1]) for p in finding.get("points") or [])
              if t is not None and v is not None]
    if len(points) < 2:
        return None
    left, right, top, bottom = 56, 12, 12, 28
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    values = [v for _, v in points] + [float(finding.get("before") or 0), float(finding.get("after") or 0)]
    lo, hi = min(values), max(values)
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    span_t = (t1 - t0) or 1.0

    def x(ts: float) -> float:
        return round(left + (ts - t0) / span_t * (width - left - right), 1)

    def y(v: float) -> float:
        return round(top + (hi - v) / (hi - lo) * (height - top - bottom), 1)

    onset = to_utc(finding.get("onset"))
    ox = x(min(max(onset.timestamp(), t0), t1)) if onset else None
    before, after = float(finding.get("before") or 0), float(finding.get("after") or 0)
    return {
        "width": width, "height": height, "left": left, "right": width - right, "top": top,
        "bottom": height - bottom,
        "polyline": " ".join(f"{x(t.timestamp())},{y(v)}" for t, v in points),
        "onset_x": ox, "before_y": y(before), "after_y": y(after),
        "y_hi": _num(hi), "y_lo": _num(lo), "t0": points[0][0], "t1": points[-1][0], "count": len(points),
    }


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


# --- finding the evidence ----------------------------------------------------------------------------

def _latest_evidence(session, *, org_id: int, incident_id: int) -> dict:
    pm = postmortems.find(session=session, org_id=org_id, incident_id=incident_id)
    if pm is None:
        return {}
    for run in postmortems.runs(session=session, pm=pm):  # newest first
        if run.evidence:
            return {**run.evidence, "_run": {"id": run.id, "attempt": run.attempt, "engine": run.engine,
                                             "started_at": run.started_at}}
    return {}


def _related_deploy_ids(session, *, incident, rt, now, frozen: dict) -> set[int]:
    start, end = incidents.window(incident, lookback_minutes=rt.settings.lookback_minutes, now=now)
    related = {d.id for d in incidents.deploys_in_window(session=session, incident=incident, start=start, end=end)}
    for d in frozen.get("deploys") or []:
        parsed = ids.parse(str(d.get("id") or ""))
        if parsed is not None and parsed[0] == ids.DEPLOY:
            related.add(parsed[1])
    return related


def load_evidence(session, *, actor, incident, evidence_id: str, rt, now) -> dict:
    """Return {"kind": …, …} for an evidence id of this incident, or raise NotFound."""
    parsed = ids.parse(evidence_id)
    missing = NotFound(f"Incident {incident.id} has no evidence {evidence_id!r}.")
    if parsed is None:
        raise missing
    prefix, number = parsed
    if prefix == ids.INCIDENT:
        raise missing  # why: another incident has its own page (evidence_url links there), not an evidence page
    if prefix in ids.ENTRY_KIND:
        entry = session.scalar(select(TimelineEntry).where(
            TimelineEntry.id == number, TimelineEntry.org_id == actor.org_id, TimelineEntry.incident_id == incident.id,
            TimelineEntry.kind == ids.ENTRY_KIND[prefix]))
        if entry is None:
            raise missing
        data = dict(entry.data or {})
        if entry.kind == "alert" and data.get("alert_id"):
            row = session.scalar(select(Alert).where(Alert.id == data["alert_id"], Alert.org_id == actor.org_id))
            if row is not None:
                data["annotations"] = dict(row.annotations or {})
                data.setdefault("labels", dict(row.labels or {}))
        return {"kind": entry.kind, "entry": entry, "data": data}
    if prefix in (ids.METRIC, ids.LOG):
        frozen = _latest_evidence(session, org_id=actor.org_id, incident_id=incident.id)
        key = "metrics" if prefix == ids.METRIC else "logs"
        finding = next((f for f in frozen.get(key) or [] if f.get("id") == evidence_id), None)
        if finding is None:
            raise missing
        ctx = {"kind": prefix, "finding": finding, "run": frozen.get("_run")}
        if prefix == ids.METRIC:
            ctx["chart"] = metric_chart(finding)
        return ctx
    frozen = _latest_evidence(session, org_id=actor.org_id, incident_id=incident.id)
    related = _related_deploy_ids(session, incident=incident, rt=rt, now=now, frozen=frozen)
    if prefix == ids.DEPLOY:
        deploy = session.scalar(select(Deploy).where(Deploy.id == number, Deploy.org_id == actor.org_id))
        if deploy is None or deploy.id not in related:
            raise missing
        return {"kind": "deploy", "deploy": deploy, "highlight": None}
    commit = session.scalar(select(Commit).join(Deploy, Commit.deploy_id == Deploy.id)
                            .where(Commit.id == number, Deploy.org_id == actor.org_id))
    if commit is None or commit.deploy_id not in related:
        raise missing
    deploy = session.get(Deploy, commit.deploy_id)
    return {"kind": "commit", "deploy": deploy, "highlight": commit.id, "commit": commit}


@router.get("/incidents/{incident_id}/evidence/{evidence_id}")
def evidence_page(incident_id: IdPath, evidence_id: str, request: Request, actor: PageActor, session: SessionDep,
                  rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    ev = load_evidence(session, actor=actor, incident=incident, evidence_id=evidence_id, rt=rt, now=now)
    return render(request, "evidence/detail.html", {"incident": incident, "evidence_id": evidence_id, "ev": ev},
                  actor=actor)


# --- the print-ready postmortem ---------------------------------------------------------------------

def print_context(session, *, actor, incident_id: int, version: int | None) -> dict:
    """Return what the print page (and the PDF, rendered from the same page) shows: the current text, marked when it
    is not the published one, or published version `version`; sections in the organization's order, citations as
    readable labels (web/citations.py)."""
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if pm.sections is None:
        raise NotFound(f"Incident {incident_id}'s postmortem has no draft yet.")
    read = presenters.postmortem_read(pm)
    shown = {"sections": read["sections"], "label": presenters.version_label(read),
             "unapproved": read["edited_after_publish"] is not None, "published": None}
    if version is not None:
        published = presenters.published_read(postmortems.published_version(session=session, pm=pm, version=version))
        shown = {"sections": published["sections"], "label": presenters.published_label(published),
                 "unapproved": False, "published": published}
    ordered = sections_in_order(orgs_templates.section_layout(session, actor.org_id), shown["sections"])
    cite = citations.citer_for(session, org_id=actor.org_id, incident=incident, values=[x["value"] for x in ordered],
                               previews=False)
    return {"incident": incident, "pm": read, "shown": shown, "ordered": ordered, "cite": cite,
            "duration": incidents.duration_minutes(incident)}


@router.get("/incidents/{incident_id}/postmortem/print")
def postmortem_print(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep,
                     version: IdQuery = None):
    """A clean page for printing or saving as PDF: no navigation, print CSS only.

    It prints the current text, marked when it is not the published one; `?version=N` prints published version N.
    """
    return render(request, "evidence/print.html",
                  print_context(session, actor=actor, incident_id=incident_id, version=version), actor=actor)


@router.get("/incidents/{incident_id}/postmortem/export.pdf")
def postmortem_pdf(incident_id: IdPath, actor: PageActor, session: SessionDep, version: IdQuery = None):
    """The print page as a PDF download (the optional `pdf` extra; without it, a 501 page says how to add it)."""
    return pdf_response(print_context(session, actor=actor, incident_id=incident_id, version=version))
