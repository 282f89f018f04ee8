"""Pages of the customer-facing version: the team's page to make, review, edit and publish it, and the public page.

The public page (/public/postmortems/{token}) needs no sign-in; it shows only the customer text, with nothing of
the organization's navigation, and is found only by its unguessable address.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail import db
from blametrail.errors import InvalidState, NotFound, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, can, require
from blametrail.postmortems import customer
from blametrail.postmortems import service as postmortems
from blametrail.web import presenters
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm
from blametrail.web.pages.common import FormDep, field, flash, redirect, render, templates
from blametrail.web.params import IdPath

router = APIRouter()
REASONS = {"evidence id": "Evidence ids", "link": "Links", "e-mail address": "E-mail addresses",
           "IP address": "IP addresses", "host name": "Host names", "version": "Versions", "commit": "Commits",
           "person": "People", "team": "Teams", "internal service name": "Internal service names"}


def _url(incident_id: int) -> str:
    return f"/incidents/{incident_id}/postmortem/customer"


def _page(request: Request, *, session, actor, rt, incident_id: int, errors: list[str] | None = None,
          values: dict | None = None, status_code: int = 200):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.find(session=session, org_id=actor.org_id, incident_id=incident_id)
    published = pm is not None and pm.published_at is not None
    row = customer.find(session=session, org_id=actor.org_id, incident_id=incident_id)
    org = orgs.get_org(session=session, org_id=actor.org_id)
    groups: dict[str, list[str]] = {}
    for item in (row.removed if row else []):
        groups.setdefault(REASONS.get(item["reason"], item["reason"]), [])
        if item["text"] not in groups[REASONS.get(item["reason"], item["reason"])]:
            groups[REASONS.get(item["reason"], item["reason"])].append(item["text"])
    base, _ = presenters.public_base(request, rt.settings)
    return render(request, "postmortems/customer.html", {
        "incident": incident, "row": row, "published": published, "org_allows": org.public_postmortems,
        "values": values or (dict(row.content) if row else {}), "errors": errors or [], "removed": groups,
        "public_url": f"{base}/public/postmortems/{row.public_token}" if row else None,
        "can_edit": can(actor.role, Action.POSTMORTEM_WRITE), "can_publish_customer": can(actor.role, Action.PUBLISH),
    }, actor=actor, status_code=status_code)


@router.get("/incidents/{incident_id}/postmortem/customer")
def customer_page(incident_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _page(request, session=session, actor=actor, rt=rt, incident_id=incident_id)


@router.post("/incidents/{incident_id}/postmortem/customer/make")
def make(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep,
         now: NowDep):
    incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.POSTMORTEM_WRITE)
    existing = customer.find(session=session, org_id=actor.org_id, incident_id=incident_id)
    if existing is not None and not confirm.confirmed(form):  # why: making it again replaces edited text
        return confirm.ask(request, actor=actor, title="Make the customer text again?",
                           question="The text is made again from the latest published version; your edits to it "
                                    "are replaced. The public address stays the same.",
                           action=f"{_url(incident_id)}/make", button="Make it again", cancel_url=_url(incident_id))
    try:
        customer.make(session=session, actor=actor, incident_id=incident_id, now=now)
    except NotFound as exc:
        db.rollback(session)
        return _page(request, session=session, actor=actor, rt=rt, incident_id=incident_id, errors=[exc.detail],
                     status_code=409)
    flash(request, "Customer text made from the published postmortem. Review what was removed before publishing.",
          "success")
    return redirect(_url(incident_id))


@router.post("/incidents/{incident_id}/postmortem/customer")
def save(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep,
         now: NowDep):
    values = {k: field(form, k) for k in customer.FIELDS}
    try:
        customer.edit(session=session, actor=actor, incident_id=incident_id, data=values, now=now)
    except ValidationFailed as exc:
        db.rollback(session)
        return _page(request, session=session, actor=actor, rt=rt, incident_id=incident_id,
                     errors=[f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.extra.get("errors", [])],
                     values=values, status_code=422)
    flash(request, "Customer text saved.", "success")
    return redirect(_url(incident_id))


@router.post("/incidents/{incident_id}/postmortem/customer/publish")
def publish(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
            rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.PUBLISH)
    customer.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if not confirm.confirmed(form):  # why: anyone with the address can read it afterwards
        return confirm.ask(request, actor=actor, title=f"Make the customer text of incident #{incident.id} public?",
                           question="Anyone with its address can read it, without signing in.",
                           action=f"{_url(incident_id)}/publish", button="Make public", cancel_url=_url(incident_id))
    try:
        customer.publish(session=session, actor=actor, incident_id=incident_id, now=now)
    except InvalidState as exc:
        db.rollback(session)
        return _page(request, session=session, actor=actor, rt=rt, incident_id=incident_id, errors=[exc.detail],
                     status_code=409)
    flash(request, "The customer text is public at its address.", "success")
    return redirect(_url(incident_id))


@router.post("/incidents/{incident_id}/postmortem/customer/withdraw")
def withdraw(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
             now: NowDep):
    incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.PUBLISH)
    customer.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if not confirm.confirmed(form):
        return confirm.ask(request, actor=actor, title="Withdraw the public customer text?",
                           question="Its address stops working at once; you can publish it again later.",
                           action=f"{_url(incident_id)}/withdraw", button="Withdraw", cancel_url=_url(incident_id))
    customer.withdraw(session=session, actor=actor, incident_id=incident_id, now=now)
    flash(request, "Withdrawn: the public address no longer shows it.", "success")
    return redirect(_url(incident_id))


@router.get("/public/postmortems/{public_token}")
def public_page(public_token: str, request: Request, session: SessionDep):
    try:
        row = customer.public(session=session, token=public_token)
    except NotFound:
        return templates.TemplateResponse(request, "public_postmortem.html", {"row": None}, status_code=404,
                                          headers={"X-Robots-Tag": "noindex"})
    incident = incidents.get_or_404(session=session, org_id=row.org_id, incident_id=row.incident_id)
    org = orgs.get_org(session=session, org_id=row.org_id)
    return templates.TemplateResponse(request, "public_postmortem.html", {
        "row": row, "incident": incident, "org": org,
        "changes": [line[2:] if line.startswith("- ") else line
                    for line in (row.content.get("what_we_are_changing") or "").splitlines() if line.strip()],
    }, headers={"X-Robots-Tag": "noindex"})
