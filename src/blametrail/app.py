"""The ASGI application: create_app(settings) wires the runtime, routes, middleware and error mapping."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from asgi_csrf import asgi_csrf
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from blametrail import __version__
from blametrail.runtime import Runtime, build_runtime
from blametrail.settings import Settings
from blametrail.web.form_guard import guard_forms

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).parent
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
     b"base-uri 'self'; form-action 'self'"),
]
DOCS_CSP = (b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            b"frame-ancestors 'none'; base-uri 'self'")  # why: Swagger UI sets inline styles
SWAGGER = "/static/vendor/swagger-ui-5.35.0"
CSRF_FREE_PREFIXES = ("/api/", "/webhooks/", "/healthz", "/static/", "/docs", "/openapi.json")


def _security_headers(app):
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        docs = scope["path"] == "/docs"

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, DOCS_CSP if docs and k == b"content-security-policy" else v) for k, v in SECURITY_HEADERS]
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in extra if k not in names]
            await send(message)

        return await app(scope, receive, send_with_headers)

    return wrapped


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None, background: bool = True):
    """Build the web application; `background` runs the embedded queue consumer, sweeper and monitor scheduler here."""
    settings = settings or Settings()
    rt = runtime or build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if background:
            rt.start_background(workers=settings.embedded_workers, scheduler=settings.monitor_scheduler)
        try:
            yield
        finally:
            if background:
                rt.stop_background()

    app = FastAPI(title="BlameTrail", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Incidents, their evidence, and AI-drafted blameless postmortems.")
    app.state.runtime = rt
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=str(PACKAGE / "templates"))

    from blametrail.web import errors, idempotency, receivers_alerts, receivers_deploys
    from blametrail.web.api import ai as ai_api
    from blametrail.web.api import connections, incidents, monitors, org, postmortems, summary, webhooks
    from blametrail.web.pages import routes as pages

    errors.install(app)
    for module in (incidents, summary, postmortems, org, ai_api, monitors, webhooks, connections, receivers_alerts, receivers_deploys,
                   pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        from fastapi.responses import HTMLResponse

        return HTMLResponse(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>BlameTrail API</title>'
            f'<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css"></head><body><div id="swagger-ui"></div>'
            f'<script src="{SWAGGER}/swagger-ui-bundle.js"></script><script src="/static/docs-init.js"></script>'
            "</body></html>")

    @app.get("/healthz", tags=["health"])
    def healthz():
        return {"status": "ok"}

    idempotency.install(app)  # inside the session middleware: API POSTs with an Idempotency-Key
    app.add_middleware(SessionMiddleware, secret_key=settings.effective_secret_key, session_cookie="blametrail_session",
                       max_age=settings.session_max_age_seconds, same_site="lax", https_only=settings.cookie_secure)
    csrf = asgi_csrf(
        app, signing_secret=settings.effective_secret_key, cookie_secure=settings.cookie_secure,
        always_protect={"/login", "/setup"},
        skip_if_scope=lambda scope: scope["path"].startswith(CSRF_FREE_PREFIXES),
    )
    return _Wrapped(app, _security_headers(guard_forms(csrf, skip_prefixes=CSRF_FREE_PREFIXES)))


class _Wrapped:
    """The ASGI callable with CSRF and headers outside, keeping the FastAPI app reachable as `.app`."""

    def __init__(self, app: FastAPI, asgi) -> None:
        self.app = app
        self._asgi = asgi
        self.state = app.state

    async def __call__(self, scope, receive, send):
        await self._asgi(scope, receive, send)
