"""Integration settings pages: HTTP monitors, inbound webhooks (secret shown once) and observability connections."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from blametrail import db, netguard
from blametrail.alerts import webhooks
from blametrail.alerts.models import WEBHOOK_KINDS
from blametrail.errors import Conflict, ValidationFailed
from blametrail.integrations import service as connections
from blametrail.integrations.models import PROVIDERS
from blametrail.integrations.schemas import ConnectionCreate, ConnectionUpdate
from blametrail.monitors import service as monitors
from blametrail.monitors.models import Monitor
from blametrail.monitors.schemas import MonitorCreate, MonitorUpdate
from blametrail.orgs.permissions import Action, can, require
from blametrail.web.api import connections as connections_api
from blametrail.web.api.webhooks import WebhookCreate, webhook_read
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep, get_runtime
from blametrail.web.params import IdPath
from blametrail.web.pages.common import FormDep, field, flash, is_htmx, redirect, render, split_list

router = APIRouter(prefix="/settings")
SEVERITIES = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")
METHODS = ("GET", "HEAD", "POST")
KIND_LABELS = {"alertmanager": "Prometheus Alertmanager", "grafana": "Grafana alerting",
               "generic_alert": "Generic alerts (JSON)", "github": "GitHub deployments and pushes",
               "generic_deploy": "Generic deploys (JSON)"}
PROVIDER_LABELS = {"prometheus": "Prometheus", "loki": "Loki", "datadog": "Datadog", "cloudwatch": "CloudWatch",
                   "fake": "Fake (development)"}
CREDENTIAL_FIELDS = ("token", "username", "password", "api_key", "app_key", "access_key_id", "secret_access_key",
                     "session_token")
BLANK_SIGNAL_ROWS = 2
NO_STORE = {"Cache-Control": "no-store"}  # why: a page carrying a secret must not linger in any cache
MONITOR_FIELDS = ("name", "url", "method", "expected_statuses", "keyword", "interval_seconds", "timeout_seconds",
                  "failure_threshold", "recovery_threshold", "service", "severity")
_OPTIONAL_MONITOR_FIELDS = ("method", "interval_seconds", "timeout_seconds", "failure_threshold",
                            "recovery_threshold", "severity")  # blank: the schema's default (create) or unchanged
LABELS = {
    "name": "Name", "url": "URL", "method": "Method", "expected_statuses": "Expected statuses", "keyword": "Keyword",
    "interval_seconds": "Interval (seconds)", "timeout_seconds": "Timeout (seconds)",
    "failure_threshold": "Failure threshold", "recovery_threshold": "Recovery threshold", "service": "Service",
    "severity": "Severity", "enabled": "Enabled", "kind": "Kind", "default_service": "Default service",
    "default_severity": "Default severity", "environment": "Environment", "provider": "Provider",
    "endpoint": "Endpoint", "credentials": "Credentials", "signals": "Signals", "options": "Options",
}


def _page(request: Request, name: str, ctx: dict, *, actor, tab: str, status_code: int = 200,
          headers: dict | None = None):
    base = {"nav": "settings", "tab": tab, "can_manage": can(actor.role, Action.MANAGE)}
    return render(request, name, {**base, **ctx}, actor=actor, status_code=status_code, headers=headers)


def _where(loc: list, rows: list[int] | None) -> str:
    """Name the field an error is about, in the form's words (signal rows counted as the form shows them)."""
    loc = [p for p in loc if p != "body"]
    if not loc:
        return ""
    head = loc[0]
    if head == "signals" and len(loc) > 1 and isinstance(loc[1], int):
        row = rows[loc[1]] if rows and loc[1] < len(rows) else loc[1] + 1
        rest = " ".join(str(p) for p in loc[2:])  # the column: name, kind, query, services or unit
        return f"Signal row {row}" + (f" {rest}" if rest else "")
    return LABELS.get(str(head), str(head))


def _messages(exc: Exception, rows: list[int] | None = None) -> list[str]:
    """Turn a pydantic or domain validation error into one readable line per problem."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
    elif isinstance(exc, ValidationFailed) and exc.extra.get("errors"):
        errors = exc.extra["errors"]
    else:
        return [getattr(exc, "detail", str(exc))]
    out = []
    for e in errors:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        where = _where(list(e.get("loc", ())), rows)
        if not where:  # a rule about several fields names them as identifiers: say them as the form does
            for key, label in LABELS.items():
                msg = msg.replace(key, label.lower()) if "_" in key else msg
        out.append(f"{where}: {msg}" if where else msg[:1].upper() + msg[1:])
    return out


def _checked(form: FormData, name: str) -> bool:
    return str(form.get(name) or "").lower() in ("on", "true", "1", "yes")


# --- monitors ---------------------------------------------------------------------------------------------------


def _monitor_values(monitor) -> dict:
    """Return the edit form's values for a stored monitor."""
    return {"name": monitor.name, "url": netguard.redact_userinfo(monitor.url), "method": monitor.method,
            "expected_statuses": ", ".join(str(c) for c in monitor.expected_statuses or []),
            "keyword": monitor.keyword or "", "interval_seconds": str(monitor.interval_seconds),
            "timeout_seconds": f"{monitor.timeout_seconds:g}", "failure_threshold": str(monitor.failure_threshold),
            "recovery_threshold": str(monitor.recovery_threshold), "service": monitor.service or "",
            "severity": monitor.severity}


def _monitor_defaults() -> dict:
    """Return the new-monitor form's initial values: the schema's defaults."""
    fields = MonitorCreate.model_fields
    return {k: f"{fields[k].default:g}" if isinstance(fields[k].default, float) else str(fields[k].default)
            for k in _OPTIONAL_MONITOR_FIELDS}


def _monitor_input(values: dict) -> tuple[dict, list[str]]:
    """Turn the form's text into the schema's input; return it and the messages about unreadable status codes."""
    data, errors, codes = {}, [], []
    for part in split_list(values["expected_statuses"]):
        if part.isdigit():
            codes.append(int(part))
        else:
            errors.append(f"Expected statuses: {part!r} is not a status code; list numbers such as 200, 204.")
    for key in MONITOR_FIELDS:
        if key == "expected_statuses":
            data[key] = codes
        elif values[key] or key not in _OPTIONAL_MONITOR_FIELDS:
            data[key] = values[key]
    return data, errors


def _monitor_list(request, *, session, actor, new: dict | None = None, errors: list[str] | None = None,
                  status_code: int = 200):
    return _page(request, "integrations/monitors.html", {
        "monitors": [monitors.to_read(m) for m in monitors.list_monitors(session=session, actor=actor)],
        "new": new or _monitor_defaults(),
        "errors": errors or [], "methods": METHODS, "severities": SEVERITIES,
    }, actor=actor, tab="monitors", status_code=status_code)


def _monitor_detail(request, *, session, actor, monitor_id: int, values: dict | None = None,
                    errors: list[str] | None = None, status_code: int = 200):
    monitor = monitors.get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    return _page(request, "integrations/monitor_detail.html", {
        "monitor": monitors.to_read(monitor),
        "checks": monitors.recent_checks(session=session, org_id=actor.org_id, monitor_id=monitor_id),
        "values": values or _monitor_values(monitor), "errors": errors or [], "methods": METHODS,
        "severities": SEVERITIES,
    }, actor=actor, tab="monitors", status_code=status_code)


@router.get("/monitors")
def monitor_list(request: Request, actor: PageActor, session: SessionDep):
    return _monitor_list(request, session=session, actor=actor)


@router.post("/monitors")
def monitor_create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    require(actor.role, Action.MANAGE)
    values = {k: field(form, k) for k in MONITOR_FIELDS}
    data, errors = _monitor_input(values)
    try:
        checked = MonitorCreate.model_validate(data)
        if errors:
            raise ValidationFailed("Invalid monitor.")
        monitor = monitors.create(session=session, actor=actor, data=checked, now=now,
                                  policy=netguard.policy_from(get_runtime(request).settings))
    except (ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback(session)
        if isinstance(exc, ValidationError) or exc.extra.get("errors"):
            errors += _messages(exc)
        return _monitor_list(request, session=session, actor=actor, new=values, errors=errors or _messages(exc),
                             status_code=getattr(exc, "status", 422))
    flash(request, f"Monitor {monitor.name} created; its first check runs within a minute.", "success")
    return redirect(f"/settings/monitors/{monitor.id}")


@router.get("/monitors/{monitor_id}")
def monitor_detail(monitor_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    return _monitor_detail(request, session=session, actor=actor, monitor_id=monitor_id)


def _update_monitor(request, *, session, actor, now, monitor_id: int, data: dict, values: dict | None = None,
                    errors: list[str] | None = None) -> tuple[Monitor | None, Response | None]:
    """Change a monitor through the service: return it, or the detail page re-rendered with the messages."""
    errors = list(errors or [])
    try:
        change = MonitorUpdate.model_validate(data)
        if errors:
            raise ValidationFailed("Invalid monitor.")
        return monitors.update(session=session, actor=actor, monitor_id=monitor_id, data=change, now=now,
                               policy=netguard.policy_from(get_runtime(request).settings)), None
    except (ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback(session)
        if isinstance(exc, ValidationError) or exc.extra.get("errors"):
            errors += _messages(exc)
        return None, _monitor_detail(request, session=session, actor=actor, monitor_id=monitor_id, values=values,
                                     errors=errors or _messages(exc), status_code=getattr(exc, "status", 422))


@router.post("/monitors/{monitor_id}")
def monitor_update(monitor_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                   now: NowDep):
    monitors.get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    require(actor.role, Action.MANAGE)
    values = {k: field(form, k) for k in MONITOR_FIELDS}
    data, errors = _monitor_input(values)
    monitor, refused = _update_monitor(request, session=session, actor=actor, now=now, monitor_id=monitor_id,
                                       data=data, values=values, errors=errors)
    if refused is not None:
        return refused
    flash(request, f"Monitor {monitor.name} saved.", "success")
    return redirect(f"/settings/monitors/{monitor_id}")


def _set_enabled(request, *, session, actor, now, monitor_id: int, enabled: bool):
    monitors.get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    require(actor.role, Action.MANAGE)
    monitor, refused = _update_monitor(request, session=session, actor=actor, now=now, monitor_id=monitor_id,
                                       data={"enabled": enabled})
    if refused is not None:
        return refused
    flash(request, f"Monitor {monitor.name} " + ("enabled: its next check runs right away." if enabled
                                                 else "paused: no checks run until you enable it again."), "success")
    return redirect(f"/settings/monitors/{monitor_id}")


@router.post("/monitors/{monitor_id}/enable")
def monitor_enable(monitor_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    return _set_enabled(request, session=session, actor=actor, now=now, monitor_id=monitor_id, enabled=True)


@router.post("/monitors/{monitor_id}/disable")
def monitor_disable(monitor_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    return _set_enabled(request, session=session, actor=actor, now=now, monitor_id=monitor_id, enabled=False)


@router.post("/monitors/{monitor_id}/delete")
def monitor_delete(monitor_id: IdPath, request: Request, actor: PageActor, session: SessionDep):
    monitor = monitors.get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    name = monitor.name
    monitors.delete_monitor(session=session, actor=actor, monitor_id=monitor_id)
    flash(request, f"Monitor {name} deleted with its check history; incidents it opened stay as they are.",
          "success")
    return redirect("/settings/monitors")


# --- inbound webhooks -------------------------------------------------------------------------------------------


def _webhook_list(request, *, session, actor, rt, new: dict | None = None, errors: list[str] | None = None,
                  status_code: int = 200):
    hooks = webhooks.list_webhooks(session=session, org_id=actor.org_id)
    return _page(request, "integrations/webhooks.html", {
        "webhooks": [webhook_read(h, rt.settings.public_url) for h in hooks],
        "new": new or {"kind": "alertmanager", "default_severity": "SEV-3", "open_incidents": True,
                       "auto_resolve": False},
        "errors": errors or [], "kinds": WEBHOOK_KINDS, "kind_labels": KIND_LABELS, "severities": SEVERITIES,
    }, actor=actor, tab="webhooks", status_code=status_code)


def _secret_page(request, *, actor, rt, hook, secret: str, rotated: bool):
    return _page(request, "integrations/webhook_secret.html", {
        "hook": webhook_read(hook, rt.settings.public_url), "secret": secret, "rotated": rotated,
        "kind_labels": KIND_LABELS,
    }, actor=actor, tab="webhooks", headers=NO_STORE)


@router.get("/webhooks")
def webhook_list(request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _webhook_list(request, session=session, actor=actor, rt=rt)


@router.post("/webhooks")
def webhook_create(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep,
                   now: NowDep):
    require(actor.role, Action.MANAGE)
    new = {k: field(form, k) for k in ("kind", "name", "default_service", "default_severity", "environment")}
    new |= {"open_incidents": _checked(form, "open_incidents"), "auto_resolve": _checked(form, "auto_resolve")}
    try:
        data = WebhookCreate.model_validate({
            **new, "default_service": new["default_service"] or None, "environment": new["environment"] or None,
            "default_severity": new["default_severity"] or "SEV-3"})
        hook, secret = webhooks.create(session=session, actor=actor, box=rt.secret_box, now=now, **data.model_dump())
    except (ValidationError, ValidationFailed) as exc:
        db.rollback(session)
        return _webhook_list(request, session=session, actor=actor, rt=rt, new=new, errors=_messages(exc),
                             status_code=422)
    return _secret_page(request, actor=actor, rt=rt, hook=hook, secret=secret, rotated=False)


@router.get("/webhooks/{webhook_id}")
def webhook_detail(webhook_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    hook = webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    return _page(request, "integrations/webhook_detail.html", {
        "hook": webhook_read(hook, rt.settings.public_url), "kind_labels": KIND_LABELS,
        "deliveries": webhooks.recent_deliveries(session=session, org_id=actor.org_id, webhook_id=webhook_id),
    }, actor=actor, tab="webhooks")


@router.post("/webhooks/{webhook_id}/rotate")
def webhook_rotate(webhook_id: IdPath, request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    hook, secret = webhooks.rotate_secret(session=session, actor=actor, box=rt.secret_box, webhook_id=webhook_id)
    return _secret_page(request, actor=actor, rt=rt, hook=hook, secret=secret, rotated=True)


@router.post("/webhooks/{webhook_id}/disable")
def webhook_disable(webhook_id: IdPath, request: Request, actor: PageActor, session: SessionDep, now: NowDep):
    webhooks.get_or_404(session=session, org_id=actor.org_id, webhook_id=webhook_id)
    hook = webhooks.disable(session=session, actor=actor, webhook_id=webhook_id, now=now)
    flash(request, f"Webhook {hook.name} disabled: its URL now answers 404 to senders.", "success")
    return redirect(f"/settings/webhooks/{webhook_id}")


# --- observability connections ----------------------------------------------------------------------------------


def _providers(rt) -> tuple[str, ...]:
    return PROVIDERS + (("fake",) if rt.settings.dev_mode else ())


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
    return _page(request, "integrations/connections.html", {
        "connections": [connections.to_read(c, box, details=details) for c in rows],
        "new": new or {"provider": "prometheus", "name": "", "endpoint": "", "signals": _signal_values([])},
        "errors": errors or [], "providers": _providers(rt), "provider_labels": PROVIDER_LABELS,
    }, actor=actor, tab="connections", status_code=status_code)


def _connection_detail(request, *, session, actor, rt, connection_id: int, values: dict | None = None,
                       errors: list[str] | None = None, status_code: int = 200):
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    read = connections.to_read(connection, rt.secret_box, details=can(actor.role, Action.MANAGE))
    values = values or {"name": read["name"], "endpoint": read["endpoint"], "enabled": read["enabled"],
                        "signals": _signal_values(read["signals"])}
    return _page(request, "integrations/connection_detail.html", {
        "connection": read, "values": values, "errors": errors or [], "provider_labels": PROVIDER_LABELS,
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
                                errors=_messages(exc, numbers), status_code=getattr(exc, "status", 422))
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
    values = {"name": field(form, "name"), "endpoint": field(form, "endpoint"), "enabled": _checked(form, "enabled"),
              "signals": rows + [_blank_signal() for _ in range(max(0, BLANK_SIGNAL_ROWS - len(rows)))]}
    signals, numbers = _signals_input(rows)
    change = {"name": values["name"], "endpoint": values["endpoint"], "enabled": values["enabled"],
              "signals": signals}
    credentials = _credentials(form)
    if credentials or _checked(form, "clear_credentials"):
        change["credentials"] = credentials  # why: given fields replace the stored set; none given keeps it
    try:
        data = ConnectionUpdate.model_validate(change)
        connections.update(session=session, actor=actor, connection=connection, data=data, box=rt.secret_box,
                           now=now, policy=netguard.policy_from(rt.settings))
    except (ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback(session)
        return _connection_detail(request, session=session, actor=actor, rt=rt, connection_id=connection_id,
                                  values=values, errors=_messages(exc, numbers),
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
    # why: the API's handler commits before it talks to the backend and records the outcome afterwards;
    # calling it keeps one implementation of that transaction split
    result = connections_api.test_connection(connection_id=connection_id, actor=actor, session=session, rt=rt)
    if is_htmx(request):
        connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
        return render(request, "integrations/_test_result.html", {
            "connection": connections.to_read(connection, rt.secret_box), "result": result,
        }, actor=actor, full_page=False)
    if result["ok"]:
        flash(request, f"Connection test passed: {result['message']}", "success")
    else:
        flash(request, f"Connection test failed: {result['error']}", "error")
    return redirect(f"/settings/connections/{connection_id}")
