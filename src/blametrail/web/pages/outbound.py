"""Outbound webhook pages (Settings → Outbound webhooks): the endpoints, adding one (its secret shown once), and each
endpoint's page with its delivery log, Test, Redeliver, rotate, turn on/off and delete (asked first)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail import db, netguard
from blametrail.errors import ValidationFailed
from blametrail.jobs.outbound import send_once
from blametrail.orgs.permissions import Action, require
from blametrail.outbound import service as outbound
from blametrail.outbound.models import EVENTS, OutboundDelivery
from blametrail.web.api.outbound import delivery_read, endpoint_read
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm
from blametrail.web.pages.common import FormDep, field, flash, redirect
from blametrail.web.pages.integration_forms import messages, settings_page
from blametrail.web.params import IdPath

router = APIRouter(prefix="/settings/outbound-webhooks")
TAB = "outbound"
SECRET_KEY = "outbound_secret"  # the session keeps a new secret for the next page view only
EVENT_LABELS = {"incident.opened": "Incident opened", "incident.resolved": "Incident resolved",
                "postmortem.drafted": "Postmortem drafted", "postmortem.edited": "Postmortem edited",
                "postmortem.published": "Postmortem published", "action_item.changed": "Action item changed"}


def _list(request: Request, *, session, actor, errors=None, new=None, status_code=200):
    rows = [endpoint_read(r) for r in outbound.list_endpoints(session=session, org_id=actor.org_id)]
    return settings_page(request, "outbound/list.html", {
        "endpoints": rows, "events": [(e, EVENT_LABELS[e]) for e in EVENTS], "errors": errors or [],
        "new": new or {"url": "", "description": "", "events": list(EVENTS)}}, actor=actor, tab=TAB,
        status_code=status_code)


@router.get("")
def list_page(request: Request, actor: PageActor, session: SessionDep):
    return _list(request, session=session, actor=actor)


@router.post("")
def create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    require(actor.role, Action.MANAGE)
    new = {"url": field(form, "url"), "description": field(form, "description"),
           "events": [str(e) for e in form.getlist("events")]}
    try:
        row, secret = outbound.create(session=session, actor=actor, url=new["url"], description=new["description"],
                                      events=new["events"], box=rt.secret_box,
                                      policy=netguard.policy_from(rt.settings), now=now)
    except ValidationFailed as exc:
        db.rollback(session)
        return _list(request, session=session, actor=actor, errors=messages(exc), new=new, status_code=422)
    request.session[SECRET_KEY] = {"id": row.id, "secret": secret}
    return redirect(f"/settings/outbound-webhooks/{row.id}")


@router.get("/{endpoint_id}")
def endpoint_page(endpoint_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    shown = request.session.pop(SECRET_KEY, None)
    secret = shown["secret"] if shown and shown.get("id") == row.id else None
    return settings_page(request, "outbound/detail.html", {
        "ep": endpoint_read(row), "secret": secret, "labels": EVENT_LABELS,
        "deliveries": [delivery_read(d) for d in outbound.list_deliveries(session=session, row=row)],
        }, actor=actor, tab=TAB)


@router.post("/{endpoint_id}/test")
def test(endpoint_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    delivery_id = outbound.ping(session=session, actor=actor, row=row, now=now).id
    db.commit(session)  # why: the send reads the delivery in its own transactions, as the job does
    send_once(factory=rt.factory, delivery_id=delivery_id, box=rt.secret_box, policy=netguard.policy_from(rt.settings),
              timeout=rt.settings.vendor_timeout_seconds, clock=rt.clock.now)
    session.expire_all()
    sent = session.get(OutboundDelivery, delivery_id)
    ok = sent.status == "succeeded"
    flash(request, f"Ping answered HTTP {sent.last_status_code}." if ok else
          f"Ping failed: {sent.last_error or 'no answer'}.", "success" if ok else "error")
    return redirect(f"/settings/outbound-webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(endpoint_id: IdPath, delivery_id: IdPath, request: Request, actor: PageActor, session: SessionDep,
              now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    delivery = outbound.get_delivery_or_404(session=session, row=row, delivery_id=delivery_id)
    outbound.redeliver(session=session, actor=actor, delivery=delivery, now=now)
    flash(request, f"Delivery {delivery.msg_id} queued again (same webhook-id).", "success")
    return redirect(f"/settings/outbound-webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/rotate")
def rotate(endpoint_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
           rt: RuntimeDep, now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    require(actor.role, Action.MANAGE)
    if not confirm.confirmed(form):
        return confirm.ask(request, actor=actor, title="Rotate the signing secret?", nav="settings",
                           question="Messages are signed with the new secret at once; the receiver must verify with "
                                    "it from now on.", action=f"/settings/outbound-webhooks/{endpoint_id}/rotate",
                           button="Rotate secret", cancel_url=f"/settings/outbound-webhooks/{endpoint_id}")
    secret = outbound.rotate_secret(session=session, actor=actor, row=row, box=rt.secret_box, now=now)
    request.session[SECRET_KEY] = {"id": row.id, "secret": secret}
    return redirect(f"/settings/outbound-webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/enabled")
def set_enabled(endpoint_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                rt: RuntimeDep, now: NowDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    on = field(form, "enabled") == "1"
    outbound.update(session=session, actor=actor, row=row, policy=netguard.policy_from(rt.settings), now=now,
                    enabled=on)
    flash(request, "Endpoint turned on." if on else "Endpoint turned off: nothing is sent to it.", "success")
    return redirect(f"/settings/outbound-webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/delete")
def delete(endpoint_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    row = outbound.get_or_404(session=session, org_id=actor.org_id, endpoint_id=endpoint_id)
    require(actor.role, Action.MANAGE)
    if not confirm.confirmed(form):
        return confirm.ask(request, actor=actor, title="Delete this outbound webhook?", nav="settings",
                           question=f"Nothing more is sent to {row.url}, and its delivery log is deleted.",
                           action=f"/settings/outbound-webhooks/{endpoint_id}/delete", button="Delete",
                           cancel_url=f"/settings/outbound-webhooks/{endpoint_id}")
    outbound.delete(session=session, actor=actor, row=row)
    flash(request, "Outbound webhook deleted.", "success")
    return redirect("/settings/outbound-webhooks")
