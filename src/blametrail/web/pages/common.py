"""Shared helpers of the HTML pages: templates and filters, form reading, flash messages, htmx detection."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from blametrail.clock import iso, parse_iso, stamp
from blametrail.orgs.permissions import Action, can
from blametrail.orgs.service import Actor
from blametrail.postmortems.lifecycle import LABELS

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
FLASH_KEY = "flash"


def format_utc(value: object, seconds: bool = False) -> str:
    """Format a datetime (or an ISO string) as 'YYYY-MM-DD HH:MM UTC'; anything else as text."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = parse_iso(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    return stamp(value, seconds=seconds)


def format_iso(value: object) -> str:
    """Format a datetime as an ISO-8601 UTC string for <time datetime> (strings pass through)."""
    if isinstance(value, datetime):
        return iso(value) or ""
    return "" if value is None else str(value)


def format_minutes(value: int | None) -> str:
    """Format a duration in minutes as '1 h 05 min'."""
    if value is None:
        return "ongoing"
    hours, minutes = divmod(int(value), 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))  # autoescape is on for every template
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
templates.env.filters["utc"] = format_utc
templates.env.filters["minutes"] = format_minutes
templates.env.filters["iso"] = format_iso
templates.env.globals["pm_label"] = lambda status: LABELS.get(status, status or "")


def csrf_token(request: Request) -> str:
    """Return the CSRF token for forms on this page (sets the cookie when missing)."""
    getter = request.scope.get("csrftoken")
    return getter() if getter else ""


def is_htmx(request: Request) -> bool:
    """Tell whether htmx sent the request (then a fragment is answered instead of a redirect)."""
    return request.headers.get("hx-request") == "true"


def flash(request: Request, message: str, kind: str = "info") -> None:
    """Keep a message for the next full page this browser renders."""
    request.session.setdefault(FLASH_KEY, [])
    request.session[FLASH_KEY] = [*request.session[FLASH_KEY], {"kind": kind, "text": message}]


def pop_flashes(request: Request) -> list[dict]:
    """Take the pending messages out of the session."""
    return request.session.pop(FLASH_KEY, None) or []


def render(request: Request, name: str, context: dict | None = None, *, status_code: int = 200,
           actor: Actor | None = None, headers: dict | None = None, full_page: bool = True):
    """Render a template with the shared context: actor, permissions, CSRF token and pending flash messages."""
    ctx = {
        "actor": actor,
        "nav": "settings" if name.startswith("settings") else "incidents",
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request) if full_page else [],
        "can_write_incidents": bool(actor and can(actor.role, Action.WRITE_INCIDENTS)),
        "can_write_postmortems": bool(actor and can(actor.role, Action.POSTMORTEM_WRITE)),
        "can_publish": bool(actor and can(actor.role, Action.PUBLISH)),
        "can_org_settings": bool(actor and can(actor.role, Action.ORG_SETTINGS)),
        "my_orgs": getattr(request.state, "memberships", []) if actor else [],
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def redirect(url: str) -> RedirectResponse:
    """Answer a form post with 303 See Other (the browser then GETs the page)."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str = "/incidents") -> str:
    """Return `value` if it is a local path ('/x', not '//x' or '/\\x'), else the default (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    return value


def query_url(path: str, **params: object) -> str:
    """Build a URL with the non-empty query parameters."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


async def read_form(request: Request) -> FormData:
    """Read an urlencoded/multipart form body (a dependency, so handlers can stay sync)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def field(form: FormData, name: str) -> str:
    """Return a form field as stripped text ('' when missing)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def split_list(text: str, sep: str = ",") -> list[str]:
    """Split comma-separated (or line-separated) text into non-empty, stripped items."""
    if sep == "\n":
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [part.strip() for part in text.split(sep) if part.strip()]


def validation_messages(exc) -> list[str]:
    """Turn a pydantic ValidationError into short human messages."""
    messages = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",))
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        messages.append(f"{loc}: {msg}" if loc else msg)
    return messages
