"""Vendor integrations in the JSON API: one shape for every kind (shared/API.md "Integrations").

GET lists every kind this build offers, configured or not; PUT creates or replaces one kind's settings (secrets are
write-only and kept when left out); POST …/test asks the vendor; DELETE removes it. Owners and admins see settings and
the inbound URLs to paste into the vendor; everyone else sees only which kinds are set up and whether they work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from fastapi import Path as PathParam

from blametrail import netguard
from blametrail.clock import iso
from blametrail.orgs.permissions import Action, can, require
from blametrail.vendors import service as vendors
from blametrail.vendors.base import Vendor
from blametrail.vendors.models import VendorIntegration
from blametrail.vendors.registry import REGISTRY
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])
KindPath = PathParam(max_length=40, pattern=r"^[a-z_]+$")


def inbound_urls(request: Request, settings, row: VendorIntegration | None, vendor: Vendor) -> dict[str, str]:
    """The URLs the vendor calls, by name (empty until the integration is set up: they carry its inbound id)."""
    if row is None:
        return {}
    base, _ = presenters.public_base(request, settings)
    return {name: f"{base}/inbound/{vendor.kind}/{row.inbound_uid}/{name}" for name in vendor.inbound}


def integration_read(request: Request, rt, vendor: Vendor, row: VendorIntegration | None, *,
                     details: bool) -> dict:
    out = {"kind": vendor.kind, "label": vendor.label, "configured": row is not None,
           "status": row.status if row else "not_configured", "last_error": row.last_error if row else None,
           "last_checked_at": iso(row.last_checked_at) if row else None}
    if details:
        out["settings"] = dict(row.settings or {}) if row else {}
        out["secrets_set"] = _secret_names(row, rt.secret_box) if row else []
        out["inbound_urls"] = inbound_urls(request, rt.settings, row, vendor)
        out["fields"] = [{"name": s.name, "label": s.label, "secret": s.secret, "required": s.required,
                          "multiline": s.multiline, "hint": s.hint} for s in vendor.settings]
    else:
        out["inbound_urls"] = {}
    return out


def _secret_names(row: VendorIntegration, box) -> list[str]:
    """Which secrets are stored (names only, never values); none when the key that sealed them is gone."""
    try:
        return sorted(vendors.secrets_of(row, box))
    except ValueError:
        return []


@router.get("")
def list_integrations(request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.READ)
    rows, details = vendors.list_for_org(session=session, org_id=actor.org_id), can(actor.role, Action.MANAGE)
    return [integration_read(request, rt, v, rows.get(k), details=details) for k, v in REGISTRY.items()]


@router.get("/{kind}")
def get_integration(request: Request, actor: ApiActor, session: SessionDep, rt: RuntimeDep, kind: str = KindPath):
    require(actor.role, Action.READ)
    vendor = vendors.vendor_or_404(kind)
    row = vendors.find(session=session, org_id=actor.org_id, kind=kind)
    return integration_read(request, rt, vendor, row, details=can(actor.role, Action.MANAGE))


@router.put("/{kind}")
def put_integration(request: Request, data: Annotated[dict, Body()], actor: ApiActor, session: SessionDep,
                    rt: RuntimeDep, now: NowDep, kind: str = KindPath):
    """Create or replace the settings; a secret left out keeps its stored value, other settings left out are cleared."""
    vendor = vendors.vendor_or_404(kind)
    row = vendors.configure(session=session, actor=actor, kind=kind, data=data, box=rt.secret_box, now=now,
                            policy=netguard.policy_from(rt.settings))
    return integration_read(request, rt, vendor, row, details=True)


@router.post("/{kind}/test")
def test_integration(actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep, kind: str = KindPath):
    result = vendors.run_test(session=session, actor=actor, kind=kind, box=rt.secret_box,
                              policy=netguard.policy_from(rt.settings), timeout=rt.settings.vendor_timeout_seconds,
                              now=now)
    return {"ok": result.ok, "latency_ms": result.latency_ms, "detail": result.detail}


@router.delete("/{kind}", status_code=204)
def delete_integration(actor: ApiActor, session: SessionDep, kind: str = KindPath):
    vendors.remove(session=session, actor=actor, kind=kind)
    return Response(status_code=204)
