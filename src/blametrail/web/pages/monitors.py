"""Monitor settings pages: list, create, edit, pause and delete HTTP monitors, with their recent checks."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from blametrail import db, netguard
from blametrail.errors import Conflict, ValidationFailed
from blametrail.monitors import service as monitors
from blametrail.monitors.models import Monitor
from blametrail.monitors.schemas import MonitorCreate, MonitorUpdate
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import NowDep, PageActor, SessionDep, get_runtime
from blametrail.web.pages.common import FormDep, field, flash, redirect, split_list
from blametrail.web.pages.integration_forms import SEVERITIES, messages, settings_page
from blametrail.web.params import IdPath
from blametrail.web.presenters import monitor_read

router = APIRouter(prefix="/settings")
METHODS = ("GET", "HEAD", "POST")
MONITOR_FIELDS = ("name", "url", "method", "expected_statuses", "keyword", "interval_seconds", "timeout_seconds",
                  "failure_threshold", "recovery_threshold", "service", "severity")
_OPTIONAL_MONITOR_FIELDS = ("method", "interval_seconds", "timeout_seconds", "failure_threshold",
                            "recovery_threshold", "severity")  # blank: the schema's default (create) or unchanged


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
    return settings_page(request, "integrations/monitors.html", {
        "monitors": [monitor_read(m) for m in monitors.list_monitors(session=session, actor=actor)],
        "lag": monitors.schedule_lag(session=session, now=get_runtime(request).clock.now(), org_id=actor.org_id),
        "new": new or _monitor_defaults(),
        "errors": errors or [], "methods": METHODS, "severities": SEVERITIES,
    }, actor=actor, tab="monitors", status_code=status_code)


def _monitor_detail(request, *, session, actor, monitor_id: int, values: dict | None = None,
                    errors: list[str] | None = None, status_code: int = 200):
    monitor = monitors.get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id)
    return settings_page(request, "integrations/monitor_detail.html", {
        "monitor": monitor_read(monitor),
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
            errors += messages(exc)
        return _monitor_list(request, session=session, actor=actor, new=values, errors=errors or messages(exc),
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
            errors += messages(exc)
        return None, _monitor_detail(request, session=session, actor=actor, monitor_id=monitor_id, values=values,
                                     errors=errors or messages(exc), status_code=getattr(exc, "status", 422))


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
