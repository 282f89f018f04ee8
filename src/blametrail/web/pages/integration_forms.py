"""What the integration settings pages share: the page frame, form labels and readable validation messages."""

from __future__ import annotations

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from blametrail.errors import ValidationFailed
from blametrail.orgs.permissions import Action, can
from blametrail.web.pages.common import render

SEVERITIES = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")
LABELS = {
    "name": "Name", "url": "URL", "method": "Method", "expected_statuses": "Expected statuses", "keyword": "Keyword",
    "interval_seconds": "Interval (seconds)", "timeout_seconds": "Timeout (seconds)",
    "failure_threshold": "Failure threshold", "recovery_threshold": "Recovery threshold", "service": "Service",
    "severity": "Severity", "enabled": "Enabled", "kind": "Kind", "default_service": "Default service",
    "default_severity": "Default severity", "environment": "Environment", "provider": "Provider",
    "endpoint": "Endpoint", "credentials": "Credentials", "signals": "Signals", "options": "Options",
}


def settings_page(request: Request, name: str, ctx: dict, *, actor, tab: str, status_code: int = 200,
                  headers: dict | None = None):
    """Render an integration settings page under its tab, telling the template whether the user may manage."""
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


def messages(exc: Exception, rows: list[int] | None = None) -> list[str]:
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


def checked(form: FormData, name: str) -> bool:
    """Tell whether a checkbox was ticked."""
    return str(form.get(name) or "").lower() in ("on", "true", "1", "yes")
