"""Inbound webhook settings pages: list, create (secret shown once), rotate and disable, with recent deliveries.

URLs and snippets use the address the page was reached at (scheme as web/forwarded.py settled it, the Host
header), unless BLAMETRAIL_PUBLIC_URL is set: then that, with a warning when this request came in elsewhere.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from blametrail import db
from blametrail.errors import ValidationFailed
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, redirect
from blametrail.web.pages.integration_forms import SEVERITIES, checked, messages, settings_page
from blametrail.web.params import IdPath
from blametrail.web.presenters import public_base, webhook_read
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.models import WEBHOOK_KINDS
from blametrail.webhooks.schemas import WebhookCreate

router = APIRouter(prefix="/settings")
KIND_LABELS = {"alertmanager": "Prometheus Alertmanager", "grafana": "Grafana alerting",
               "generic_alert": "Generic alerts (JSON)", "github": "GitHub deployments and pushes",
               "generic_deploy": "Generic deploys (JSON)"}
NO_STORE = {"Cache-Control": "no-store"}  # why: a page carrying a secret must not linger in any cache


def _context(request: Request, rt, **ctx) -> dict:
    base, warning = public_base(request, rt.settings)
    hooks = ctx.pop("hooks", None)
    if hooks is not None:
        ctx["webhooks"] = [webhook_read(h, base) for h in hooks]
    if "hook" in ctx:
        ctx["hook"] = webhook_read(ctx["hook"], base)
    return {**ctx, "public_url_warning": warning}


def _webhook_list(request, *, session, actor, rt, new: dict | None = None, errors: list[str] | None = None,
                  status_code: int = 200):
    hooks = webhooks.list_webhooks(session=session, org_id=actor.org_id)
    ctx = _context(request, rt, hooks=hooks, errors=errors or [], kinds=WEBHOOK_KINDS, kind_labels=KIND_LABELS,
                   severities=SEVERITIES, new=new or {"kind": "alertmanager", "default_severity": "SEV-3",
                                                      "open_incidents": True, "auto_resolve": False})
    return settings_page(request, "integrations/webhooks.html", ctx, actor=actor, tab="webhooks",
                         status_code=status_code)


def _secretsettings_page(request, *, actor, rt, hook, secret: str, rotated: bool):
    return settings_page(request, "integrations/webhook_secret.html", _context(
        request, rt, hook=hook, secret=secret, rotated=rotated, kind_labels=KIND_LABELS), actor=actor, tab="webhooks", headers=NO_STORE)


@router.get("/webhooks")
def webhook_list(request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _webhook_list(request, session=session, actor=actor, rt=rt)


@router.post("/webhooks")
def webhook_create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep,
                   now: NowDep):
    require(actor.role, Action.MANAGE)
    new = {k: field(form, k) for k in ("kind", "name", "default_service", "default_severity", "environment")}
    new |= {"open_incidents": checked(form, "open_incidents"), "auto_resolve": checked(form, "auto_resolve")}
    try:
        data = WebhookCreate.model_validate({
            **new, "default_service": new["default_service"] or None, "environment": new["environment"] or None,
            "default_severity": new["default_severity"] or "SEV-3"})
        hook, secret = webhooks.create(session=session, actor=actor, box=rt.secret_box, now=now, **data.model_dump())
    except (ValidationError, ValidationFailed) as exc:
        db.rollback(session)
        return _webhook_list(request, session=session, actor=actor, rt=rt, new=new, errors=messages(exc),
                             status_code=422)
    return _secretsettings_page(request, actor=actor, rt=rt, hook=hook, secret=secret, rotated=False)


@router.get("/webhooks/{webhook_id}")
def webhook_detail(webhook_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    hook = webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    return settings_page(request, "integrations/webhook_detail.html", _context(
        request, rt, hook=hook, kind_labels=KIND_LABELS,
        deliveries=webhooks.recent_deliveries(session=session, org_id=actor.org_id, webhook_id=webhook_id)),
        actor=actor, tab="webhooks")


@router.post("/webhooks/{webhook_id}/rotate")
def webhook_rotate(webhook_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    hook, secret = webhooks.rotate_secret(session=session, actor=actor, box=rt.secret_box, webhook_id=webhook_id)
    return _secretsettings_page(request, actor=actor, rt=rt, hook=hook, secret=secret, rotated=True)


@router.post("/webhooks/{webhook_id}/disable")
def webhook_disable(webhook_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    hook = webhooks.disable(session=session, actor=actor, webhook_id=webhook_id, now=now)
    flash(request, f"Webhook {hook.name} disabled: its URL now answers 404 to senders.", "success")
    return redirect(f"/settings/webhooks/{webhook_id}")
