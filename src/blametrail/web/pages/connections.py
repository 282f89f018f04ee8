"""Observability connection settings pages: list, create, edit, test and delete connections."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from blametrail import db, netguard
from blametrail.errors import Conflict, ValidationFailed
from blametrail.integrations import service as connections
from blametrail.integrations.base import REGISTRY
from blametrail.integrations.schemas import ConnectionCreate, ConnectionUpdate
from blametrail.orgs.permissions import Action, can, require
from blametrail.web.connection_check import run_connection_test
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, is_htmx, redirect, render, split_list
from blametrail.web.pages.integration_forms import checked, messages, settings_page
from blametrail.web.params import IdPath
from blametrail.web.presenters import connection_read

router = APIRouter(prefix="/settings")
PROVIDER_LABELS = {p.name: p.label for p in REGISTRY.values()}
CREDENTIAL_FIELDS = tuple(dict.fromkeys(name for p in REGISTRY.values() for name in p.credential_names))


def _credential_groups() -> list[dict]:
    """Return the form's credential sections: providers asking for the same fields share one."""
    groups: dict[tuple, dict] = {}
    for provider in REGISTRY.values():
        if provider.dev_only:
            continue  # why: the in-memory twin's token is only for tests, which post it without the form
        group = groups.setdefault(provider.credential_fields, {
            "labels": [], "hint": provider.credentials_hint, "fields": provider.credential_fields})
        group["labels"].append(provider.label)
    return [{"heading": " or ".join(g["labels"]), "hint": g["hint"], "fields": g["fields"]} for g in groups.values()]


CREDENTIAL_GROUPS = _credential_groups()
BLANK_SIGNAL_ROWS = 2


def _providers(rt) -> tuple[str, ...]:
    return tuple(p.name for p in REGISTRY.values() if rt.settings.dev_mode or not p.dev_only)


def _blank_signal() -> dict:
    return {"name": "", "kind": "metric", "query": "", "services": "", "unit": ""}


def _signal_values(signals: list[dict]) -> list[dict]:
    """Return the form rows for stored signals, plus blank rows to add more."""
    rows = [{"name": s.get("name", ""), "kind": s.get("kind", "metric"),
             "query": s["query"] if isinstance(s.get("query"), str) else json.dumps(s.get("query"), sort_keys=True),
             "services": ", ".join(s.get("services") or []), "unit": s.get("unit", "")} for s in signals or []]
    return rows + [_blank_signal() for _ in range(BLANK_SIGNAL_ROWS)]


def _signal_rows(form: FormData) -> list[dict]:
    """Read the signal rows as typed (the form sends each column as a repeated field)."""
    columns = {k: form.getlist(f"signal_{k}") for k in ("name", "kind", "query", "services", "unit")}
    rows = []
    for i in range(len(columns["name"])):
        def cell(key: str) -> str:
            values = columns[key]
            return str(values[i]).replace("\r\n", "\n").strip() if i < len(values) else ""
        rows.append({k: cell(k) for k in columns})
    return rows


def _signals_input(rows: list[dict]) -> tuple[list[dict], list[int]]:
    """Return the schema input for the filled rows, and each one's row number in the form (for messages)."""
    data, numbers = [], []
    for number, row in enumerate(rows, start=1):
        if not (row["name"] or row["query"]):
            continue  # a blank row: nothing to add (clearing a row removes its signal)
        data.append({"name": row["name"], "kind": row["kind"] or "metric", "query": row["query"],
                     "services": split_list(row["services"]) or ["*"], "unit": row["unit"]})
        numbers.append(number)
    return data, numbers


def _credentials(form: FormData) -> dict[str, str]:
    return {k: str(form.get(f"cred_{k}") or "").strip() for k in CREDENTIAL_FIELDS
            if str(form.get(f"cred_{k}") or "").strip()}


def _connection_list(request, *, session, actor, rt, new: dict | None = None, errors: list[str] | None = None,
                     status_code: int = 200):
    box = rt.secret_box
    rows = connections.list_connections(session=session, org_id=actor.org_id)
    details = can(actor.role, Action.MANAGE)
    return settings_page(request, "integrations/connections.html", {
        "connections": [connection_read(c, box, details=details) for c in rows],
        "new": new or {"provider": "prometheus", "name": "", "endpoint": "", "signals": _signal_values([])},
        "errors": errors or [], "providers": _providers(rt), "provider_labels": PROVIDER_LABELS,
        "credential_groups": CREDENTIAL_GROUPS,
    }, actor=actor, tab="connections", status_code=status_code)


def _connection_detail(request, *, session, actor, rt, connection_id: int, values: dict | None = None,
                       errors: list[str] | None = None, status_code: int = 200):
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    read = connection_read(connection, rt.secret_box, details=can(actor.role, Action.MANAGE))
    values = values or {"name": read["name"], "endpoint": read["endpoint"], "enabled": read["enabled"],
                        "signals": _signal_values(read["signals"])}
    return settings_page(request, "integrations/connection_detail.html", {
        "connection": read, "values": values, "errors": errors or [], "provider_labels": PROVIDER_LABELS,
        "credential_groups": CREDENTIAL_GROUPS,
        "result": None,
    }, actor=actor, tab="connections", status_code=status_code)


@router.get("/connections")
def connection_list(request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _connection_list(request, session=session, actor=actor, rt=rt)


@router.post("/connections")
def connection_create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep,
                      now: NowDep):
    require(actor.role, Action.MANAGE)
    rows = _signal_rows(form)
    new = {"provider": field(form, "provider"), "name": field(form, "name"), "endpoint": field(form, "endpoint"),
           "signals": rows + [_blank_signal() for _ in range(max(0, BLANK_SIGNAL_ROWS - len(rows)))]}
    signals, numbers = _signals_input(rows)
    try:
        data = ConnectionCreate.model_validate({"provider": new["provider"], "name": new["name"],
                                                "endpoint": new["endpoint"], "credentials": _credentials(form),
                                                "signals": signals})
        connection = connections.create(session=session, actor=actor, data=data, box=rt.secret_box, now=now,
                                        allow_fake=rt.settings.dev_mode, policy=netguard.policy_from(rt.settings))
    except (ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback(session)
        return _connection_list(request, session=session, actor=actor, rt=rt, new=new,
                                errors=messages(exc, numbers), status_code=getattr(exc, "status", 422))
    flash(request, f"Connection {connection.name} saved. Test it to check BlameTrail can reach it.", "success")
    return redirect(f"/settings/connections/{connection.id}")


@router.get("/connections/{connection_id}")
def connection_detail(connection_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _connection_detail(request, session=session, actor=actor, rt=rt, connection_id=connection_id)


@router.post("/connections/{connection_id}")
def connection_update(connection_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                      rt: RuntimeDep, now: NowDep):
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    require(actor.role, Action.MANAGE)
    rows = _signal_rows(form)
    values = {"name": field(form, "name"), "endpoint": field(form, "endpoint"), "enabled": checked(form, "enabled"),
              "signals": rows + [_blank_signal() for _ in range(max(0, BLANK_SIGNAL_ROWS - len(rows)))]}
    signals, numbers = _signals_input(rows)
    change = {"name": values["name"], "endpoint": values["endpoint"], "enabled": values["enabled"],
              "signals": signals}
    credentials = _credentials(form)
    if credentials or checked(form, "clear_credentials"):
        change["credentials"] = credentials  # why: given fields replace the stored set; none given keeps it
    try:
        data = ConnectionUpdate.model_validate(change)
        connections.update(session=session, actor=actor, connection=connection, data=data, box=rt.secret_box,
                           now=now, policy=netguard.policy_from(rt.settings))
    except (ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback(session)
        return _connection_detail(request, session=session, actor=actor, rt=rt, connection_id=connection_id,
                                  values=values, errors=messages(exc, numbers),
                                  status_code=getattr(exc, "status", 422))
    flash(request, f"Connection {values['name']} saved.", "success")
    return redirect(f"/settings/connections/{connection_id}")


@router.post("/connections/{connection_id}/delete")
def connection_delete(connection_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    name = connection.name
    connections.delete(session=session, actor=actor, connection=connection)
    flash(request, f"Connection {name} deleted; postmortems no longer fetch its signals.", "success")
    return redirect("/settings/connections")


@router.post("/connections/{connection_id}/test")
def connection_test(connection_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    result = run_connection_test(connection_id=connection_id, actor=actor, session=session, rt=rt)
    if is_htmx(request):
        connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
        return render(request, "integrations/_test_result.html", {
            "connection": connection_read(connection, rt.secret_box), "result": result,
        }, actor=actor, full_page=False)
    if result["ok"]:
        flash(request, f"Connection test passed: {result['message']}", "success")
    else:
        flash(request, f"Connection test failed: {result['error']}", "error")
    return redirect(f"/settings/connections/{connection_id}")
