"""The one mapping from errors to HTTP: problem+json for the API, an HTML page for browsers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from blametrail.errors import DomainError
from blametrail.orgs import service as orgs

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
# why: web/deps.SESSION_KEY, repeated: deps imports this module (through idempotency); a test keeps them equal
SESSION_KEY = "sid"
_HTTP_SLUGS = {401: "unauthenticated", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
               413: "too-large", 415: "unsupported-media-type"}


def problem(status: int, slug: str, title: str, detail: str, headers: dict | None = None, **extra) -> JSONResponse:
    """Return an RFC 9457 problem response."""
    body = _printable({"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **extra})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _printable(value):
    """Return the value with text a response can encode (an echoed JSON key may hold a lone surrogate)."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/healthz")) and "text/html" in request.headers.get("accept", "")


def _signed_in(request: Request) -> tuple[object | None, list]:
    """Return who is signed in and their organizations, for the error page's nav; (None, []) when unknown."""
    raw = (request.scope.get("session") or {}).get(SESSION_KEY)
    runtime = getattr(request.app.state, "runtime", None)
    if not raw or runtime is None:
        return None, []
    try:
        # why: its own short read-only session: the request's own may be the one that failed (or never opened)
        with runtime.factory() as session:
            actor = orgs.session_actor(session=session, raw=raw, now=runtime.clock.now())
            if actor is None:
                return None, []
            return actor, [(m.org_id, m.org.name) for m in orgs.memberships_of(session=session,
                                                                                 user_id=actor.user_id)]
    except Exception:  # noqa: BLE001 — why: an error page without a nav beats no error page at all
        log.warning("error page: could not look up the signed-in user", exc_info=True)
        return None, []


async def _html(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    templates = request.app.state.templates
    actor, my_orgs = await run_in_threadpool(_signed_in, request)
    context = {"title": _printable(title), "detail": _printable(detail), "status": status, "actor": actor,
               "my_orgs": my_orgs, "nav": None}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object"}}},
    "additionalProperties": True,  # per-problem extras: retry_after, current_version, limit…
}


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers below send: every 4xx is problem+json, never FastAPI's shape."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = PROBLEM_SCHEMA
        problem = {"description": "A problem (RFC 9457): what went wrong and what to do, with the fields at fault",
                   "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                responses["4XX"] = problem
        return schema

    app.openapi = openapi


def install(app: FastAPI) -> None:
    """Register the handlers on the app (and document their problem responses in its OpenAPI)."""
    _document_problems(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        if exc.status >= 500:  # why: the operator must act (a key, a setting); one line, no traceback
            log.error("%s on %s %s: %s", exc.slug, request.method, request.url.path, exc.detail)
        if exc.status == 401 and _wants_html(request):
            if getattr(request.state, "login_page", None) is not None:  # a refused form POST (web/deps.page_actor)
                return request.state.login_page
            from fastapi.responses import RedirectResponse
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if _wants_html(request):
            response = await _html(request, exc.status, exc.title, exc.detail)
            if headers:
                response.headers.update(headers)
            return response
        extra = {k: v for k, v in exc.extra.items()}
        return problem(exc.status, exc.slug, exc.title, exc.detail, headers=headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = _printable([{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                             for e in exc.errors()])
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in errors[:5])
        detail = f"Invalid input: {fields}." if fields else "Invalid input."
        if _wants_html(request):
            return await _html(request, 422, "Invalid input", detail)
        return problem(422, "validation", "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        slug = _HTTP_SLUGS.get(exc.status_code, "http-error")
        title = detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 400 and isinstance(exc.__cause__, (RecursionError, ValueError)):
            # why: FastAPI's JSON parsing fails this way on a body nested ~1,000 deep or a 4,300+ digit number
            slug, title = "malformed-json", "Malformed JSON"
            detail = "The JSON body cannot be read: it is nested too deeply or holds a number too long to parse."
        if _wants_html(request):
            return await _html(request, exc.status_code, title, detail)
        return problem(exc.status_code, slug, title, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = "An unexpected error occurred; it has been logged."
        if _wants_html(request):
            return await _html(request, 500, "Server error", detail)
        return problem(500, "server-error", "Server error", detail)
