"""Integration settings pages (Settings → Chat, paging and trackers): one page per vendor kind, built from its
`Vendor` description — the settings to fill in (secrets write-only), the URLs to paste into the vendor, a Test
button with the vendor's answer in plain words, and Remove (asked first). Owners and admins change them; everyone
else sees which integrations are set up and whether they work (as GET /api/v1/integrations shows them).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail import db, netguard
from blametrail.errors import ValidationFailed
from blametrail.orgs.permissions import Action, can, require
from blametrail.vendors import service as vendors
from blametrail.vendors.registry import REGISTRY
from blametrail.web.api.vendors import integration_read
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm
from blametrail.web.pages.common import FormDep, field, flash, is_htmx, redirect, render
from blametrail.web.pages.integration_forms import messages, settings_page

router = APIRouter(prefix="/settings/integrations")
TAB = "vendors"


def _kind_or_404(kind: str):
    return vendors.vendor_or_404(kind)


@router.get("")
def integrations_page(request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    rows = vendors.list_for_org(session=session, org_id=actor.org_id)
    items = [integration_read(request, rt, v, rows.get(k), details=False) for k, v in REGISTRY.items()]
    return settings_page(request, "integrations/vendors.html", {"items": items}, actor=actor, tab=TAB)


def _page(request: Request, *, session, actor, rt, kind: str, errors: list[str] | None = None,
          typed: dict | None = None, result=None, status_code: int = 200):
    vendor = _kind_or_404(kind)
    row = vendors.find(session=session, org_id=actor.org_id, kind=kind)
    manage = can(actor.role, Action.MANAGE)
    item = integration_read(request, rt, vendor, row, details=manage)
    values = {**(item.get("settings") or {}), **(typed or {})}
    return settings_page(request, "integrations/vendor.html", {
        "vendor": vendor, "item": item, "values": values, "errors": errors or [], "result": result,
        "docs": f"docs/integrations.md#{vendor.docs or vendor.kind}"}, actor=actor, tab=TAB, status_code=status_code)


@router.get("/{kind}")
def integration_page(kind: str, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _page(request, session=session, actor=actor, rt=rt, kind=kind)


@router.post("/{kind}")
def integration_save(kind: str, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                     rt: RuntimeDep, now: NowDep):
    vendor = _kind_or_404(kind)
    require(actor.role, Action.MANAGE)
    # why: an empty secret field means "keep the stored one" (they are never shown), so it is left out of the change
    # and an empty setting is cleared (configure() clears what a change leaves out)
    data = {s.name: field(form, s.name) for s in vendor.settings if field(form, s.name)}
    try:
        vendors.configure(session=session, actor=actor, kind=kind, data=data, box=rt.secret_box, now=now,
                          policy=netguard.policy_from(rt.settings))
    except ValidationFailed as exc:
        db.rollback(session)
        typed = {s.name: data.get(s.name, "") for s in vendor.settings if not s.secret}
        return _page(request, session=session, actor=actor, rt=rt, kind=kind, errors=messages(exc), typed=typed,
                     status_code=422)
    flash(request, f"{vendor.label} saved. Use Test to check that {vendor.label} accepts it.", "success")
    return redirect(f"/settings/integrations/{kind}")


@router.post("/{kind}/test")
def integration_test(kind: str, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep,
                     now: NowDep):
    _kind_or_404(kind)
    result = vendors.run_test(session=session, actor=actor, kind=kind, box=rt.secret_box,
                              policy=netguard.policy_from(rt.settings), timeout=rt.settings.vendor_timeout_seconds,
                              now=now)
    if is_htmx(request):
        return render(request, "integrations/_vendor_test.html", {"result": result}, actor=actor, full_page=False)
    return _page(request, session=session, actor=actor, rt=rt, kind=kind, result=result)


@router.post("/{kind}/remove")
def integration_remove(kind: str, request: Request, form: FormDep, actor: PageActor, session: SessionDep):
    vendor = _kind_or_404(kind)
    require(actor.role, Action.MANAGE)
    vendors.get_or_404(session=session, org_id=actor.org_id, kind=kind)
    if not confirm.confirmed(form):
        return confirm.ask(request, actor=actor, title=f"Remove the {vendor.label} integration?",
                           question=f"Its settings and secrets are deleted and its URLs stop working at once; "
                                    f"{vendor.label} calls to them are refused.",
                           action=f"/settings/integrations/{kind}/remove", button="Remove",
                           cancel_url=f"/settings/integrations/{kind}", nav="settings")
    vendors.remove(session=session, actor=actor, kind=kind)
    flash(request, f"{vendor.label} removed.", "success")
    return redirect("/settings/integrations")
