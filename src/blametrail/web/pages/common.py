"""Shared helpers of the HTML pages: templates and filters, form reading, flash messages, htmx detection."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.routing import Match

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


# --- a form POST refused for an expired session: keep what was typed across the login ---------------------
RESTORE_MAX_CHARS = 60_000  # why: bounds the hidden field (and the page) while keeping a 20,000-character update whole
RESTORE_MAX_FIELDS = 40
_NOT_KEPT = re.compile(r"csrf|password|secret|token|api_?key|credential", re.IGNORECASE)


def kept_fields(form) -> tuple[dict[str, str], bool]:
    """Return the text fields of a refused form worth giving back (never the CSRF token or a secret), within the
    size bound, and whether some text had to be left out."""
    if form is None:
        return {}, False
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    counts: dict[str, int] = {}
    for name, _ in items:
        counts[name] = counts.get(name, 0) + 1
    kept: dict[str, str] = {}
    dropped, size = False, 0
    for name, value in items:
        # why: repeated names are checkboxes and row tables whose order the fresh page decides; secrets never travel
        if counts[name] > 1 or _NOT_KEPT.search(name) or not value.strip() or len(name) > 100:
            continue
        if size + len(name) + len(value) > RESTORE_MAX_CHARS or len(kept) >= RESTORE_MAX_FIELDS:
            dropped = True
            continue
        kept[name] = value
        size += len(name) + len(value)
    return kept, dropped


def parse_restore(text: str) -> dict[str, str]:
    """Read the kept fields back from the login form (anything malformed, oversized or secret-looking is dropped)."""
    if not text or len(text) > RESTORE_MAX_CHARS * 7:  # why: JSON escaping can grow text (\uXXXX) up to ~6x
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    pairs = [(k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)]
    kept, _ = kept_fields(_Pairs(pairs))
    return kept


class _Pairs:
    """The one FormData method kept_fields reads, over a list of pairs."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def multi_items(self) -> list[tuple[str, str]]:
        return self._pairs


def _has_page(request: Request, path: str) -> bool:
    """Tell whether a GET of `path` reaches a route of this app."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.routes)


def return_page(request: Request) -> str:
    """Return the page a refused form lives on: the same-origin page it was sent from, else the nearest path above
    the POST's URL that a GET reaches (/incidents/5/updates -> /incidents/5)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.url.netloc and referer.path != request.url.path:
        candidate = safe_next(referer.path + (f"?{referer.query}" if referer.query else ""), default="")
        if candidate and _has_page(request, referer.path):
            return candidate
    path = request.url.path.rstrip("/")
    while path:
        if _has_page(request, path):
            return safe_next(path)
        path = path.rsplit("/", 1)[0]
    return safe_next("")


async def refused_post_login(request: Request):
    """Render the login page for a form POST refused for want of a session, keeping what was typed (in the form,
    as hidden fields: nothing is stored on the server) and the page to come back to."""
    try:
        form = await request.form()  # why: Starlette keeps it, so the handler's own read (never reached) is no cost
    except Exception:  # noqa: BLE001 — why: an unreadable body leaves nothing to keep; the login page still shows
        form = None
    fields, dropped = kept_fields(form)
    return render(request, "login.html", {
        "next": return_page(request), "expired": True, "restore_dropped": dropped,
        "restore": json.dumps(fields) if fields else "", "restore_action": request.url.path if fields else ""},
        status_code=401)
