"""A postmortem's history as pages: every revision opens on its own, and any two compare side by side.

`GET /incidents/{id}/postmortem/revisions/{n}` shows revision n whole, as the document page shows a text (labelled
citations), with what changed against the revision before it. `GET …/postmortem/compare?a=N&b=M` compares two
revisions (`b=current`, the default, for the text as it is now; `a` defaults to the first revision) section by section: prose word by word, tables and lists row by
row (postmortems/diff.py), unchanged sections folded.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail.errors import ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.orgs import templates as orgs_templates
from blametrail.postmortems import diff
from blametrail.postmortems import service as postmortems
from blametrail.web import citations, presenters
from blametrail.web.deps import PageActor, SessionDep
from blametrail.web.pages.common import render
from blametrail.web.pages.document import sections_in_order
from blametrail.web.params import MAX_ID, IdPath

router = APIRouter(prefix="/incidents/{incident_id}/postmortem")
KIND_LABELS = {"ai": "AI draft", "edit": "Edit", "publish": "Publication"}


@router.get("/revisions/{number}")
def revision_page(incident_id: IdPath, number: IdPath, request: Request, actor: PageActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    rev = postmortems.get_revision(session=session, pm=pm, number=number)
    numbers = [r.number for r in postmortems.list_revisions(session=session, pm=pm)]
    layout = orgs_templates.section_layout(session, actor.org_id)
    sections = sections_in_order(layout, rev.sections or {})
    cite = citations.citer_for(session, org_id=actor.org_id, incident=incident, values=[s["value"] for s in sections])
    earlier = [n for n in numbers if n < number]
    changed = []
    if earlier:
        before = postmortems.get_revision(session=session, pm=pm, number=earlier[-1])
        changed = [s.title for s in diff.compare(before.sections, rev.sections, layout) if s.changed]
    return render(request, "postmortems/revision.html", {
        "incident": incident, "pm": presenters.postmortem_read(pm), "rev": presenters.revision_read(rev),
        "kind_label": KIND_LABELS.get(rev.kind, rev.kind), "sections": sections, "cite": cite, "changed": changed,
        "previous": earlier[-1] if earlier else None,
        "next": next((n for n in numbers if n > number), None), "latest": numbers[-1] if numbers else None,
    }, actor=actor)


def _side(value: str | None, name: str) -> int | str:
    """Read ?a= / ?b=: a revision number, or `current` (the text as it is now)."""
    text = (value or "").strip()
    if text == "current":
        return text
    if text.isdigit() and 1 <= int(text) <= MAX_ID:
        return int(text)
    raise ValidationFailed(f"{name} must be a revision number or 'current'.",
                           [{"loc": ["query", name], "msg": "a revision number or 'current'"}])


@router.get("/compare")
def compare_page(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep,
                 a: str | None = None, b: str | None = None):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    numbers = [r.number for r in postmortems.list_revisions(session=session, pm=pm)]
    # why: without a choice, the first text against the current one (what people changed in all)
    left, right = _side(a or str(numbers[0] if numbers else "current"), "a"), _side(b or "current", "b")

    def text_of(side: int | str) -> tuple[dict, dict]:
        if side == "current":
            read = presenters.postmortem_read(pm)
            return read["sections"] or {}, {"label": "Current text", "number": None, "author": None,
                                            "created_at": read["updated_at"], "kind": "current"}
        rev = postmortems.get_revision(session=session, pm=pm, number=int(side))
        info = presenters.revision_read(rev)
        return rev.sections or {}, {**info, "label": f"Revision {rev.number} ({KIND_LABELS.get(rev.kind, rev.kind)})"}

    before, left_info = text_of(left)
    after, right_info = text_of(right)
    layout = orgs_templates.section_layout(session, actor.org_id)
    sections = diff.compare(before, after, layout)
    return render(request, "postmortems/compare.html", {
        "incident": incident, "pm": presenters.postmortem_read(pm), "sections": sections, "left": left_info,
        "right": right_info, "a": left, "b": right, "numbers": numbers,
        "changed_count": sum(1 for s in sections if s.changed),
    }, actor=actor)
