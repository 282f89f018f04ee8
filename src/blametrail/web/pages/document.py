"""The postmortem as a document: one full-width page per postmortem, the main view of it.

`GET /incidents/{id}/postmortem` shows the current text in the organization's section order, each section with its
own Edit link, every citation a link with a readable label and a preview; `?version=N` shows published version N
(read-only). The incident page keeps a compact card that links here; print, PDF, Markdown and history start here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail.incidents import service as incidents
from blametrail.orgs import templates as orgs_templates
from blametrail.orgs.permissions import Action, can
from blametrail.postmortems import service as postmortems
from blametrail.web import citations, presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import review
from blametrail.web.pages.card import card_context
from blametrail.web.pages.common import render
from blametrail.web.params import IdPath, IdQuery

router = APIRouter()


def anchor(key: str) -> str:
    """Return the element id of a section on the page (extra sections: `extra-<key>`)."""
    return key.replace(":", "-")


def sections_in_order(layout: list[dict], sections: dict) -> list[dict]:
    """Return [{key, anchor, title, extra, value}] in the layout's order; extra sections read sections["extra"]."""
    extra = sections.get("extra") or {}
    out = []
    for item in layout:
        if item.get("extra"):
            key = f"extra:{item['key']}"
            out.append({"key": key, "anchor": anchor(key), "title": item["title"], "extra": True,
                        "value": extra.get(item["key"]) or ""})
        else:
            out.append({"key": item["key"], "anchor": item["key"], "title": item["title"], "extra": False,
                        "value": sections.get(item["key"])})
    return out


def cited_in_order(sections: list[dict], cites: dict[str, citations.Cite]) -> list[citations.Cite]:
    """Return the evidence the text cites, each once, in the order the reader meets it."""
    seen: dict[str, None] = {}
    for s in sections:
        citations.collect(s["value"], seen)
    return [cites[e] for e in seen if e in cites and cites[e].url]


@router.get("/incidents/{incident_id}/postmortem")
def document(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep,
             now: NowDep, version: IdQuery = None):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    read = presenters.postmortem_read(pm)
    published = None
    text = read["sections"]
    if version is not None:
        published = presenters.published_read(postmortems.published_version(session=session, pm=pm, version=version))
        text = published["sections"]
    layout = orgs_templates.section_layout(session, actor.org_id)
    sections = sections_in_order(layout, text) if text is not None else []
    cite = citations.citer_for(session, org_id=actor.org_id, incident=incident, values=[s["value"] for s in sections])
    card = card_context(session=session, actor=actor, incident=incident, now=now, settings=rt.settings)["card"]
    editable = published is None and text is not None and can(actor.role, Action.POSTMORTEM_WRITE)
    ctx = {
        "incident": presenters.incident_read(session, incident), "pm": read, "card": card, "sections": sections,
        "cite": cite, "evidence": cited_in_order(sections, cite.cites), "published": published,
        **review.page_context(session=session, actor=actor, pm=pm),
        "editable": editable, "version_label": (presenters.published_label(published) if published
                                                else presenters.version_label(read)),
    }
    return render(request, "postmortems/document.html", ctx, actor=actor)
