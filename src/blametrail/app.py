"""The ASGI application: create_app(settings) wires the runtime, routes, middleware and error mapping."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import itsdangerous
from asgi_csrf import asgi_csrf
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection

from blametrail import __version__
from blametrail.crypto import signing_keys
from blametrail.runtime import Runtime, build_runtime
from blametrail.settings import Settings
from blametrail.web import (
    errors,
    health,
    idempotency,
    inbound_paging,
    inbound_slack,
    inbound_trackers,
    receivers_alerts,
    receivers_deploys,
)
from blametrail.web.api import (
    action_items,
    connections,
    customer,
    incidents,
    learning,
    monitors,
    org,
    outbound,
    pdf,
    postmortems,
    reviews,
    search,
    slack,
    summary,
    trackers,
    vendors,
    webhooks,
    wiki_pages,
)
from blametrail.web.api import ai as ai_api
from blametrail.web.form_guard import guard_forms
from blametrail.web.forwarded import trust_forwarded
from blametrail.web.pages import routes as pages

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
RESIGN_SESSION = "blametrail.resign_session"  # ASGI scope key: the session cookie was signed by an older key
CSRF_FREE_PREFIXES = ("/api/", "/webhooks/", "/inbound/", "/healthz", "/readyz", "/static/", "/docs", "/openapi.json")


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

    errors.install(app)
    # why: routes are matched in order; the receivers come first because senders post the most requests
    for module in (receivers_alerts, receivers_deploys, incidents, summary, postmortems, pdf, outbound, customer, reviews, action_items, search, learning, vendors, slack, inbound_slack, trackers, inbound_trackers, inbound_paging, wiki_pages, org, ai_api, monitors, webhooks, connections,
                   pages, health):
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

    idempotency.install(app)  # inside the session middleware: API POSTs with an Idempotency-Key
    keys = signing_keys(settings.effective_secret_key)  # why: the first key signs; cookies under the others still pass
    app.add_middleware(_KeyRingSessions, secret_keys=keys, session_cookie="blametrail_session",
                       max_age=settings.session_max_age_seconds, same_site="lax", https_only=settings.cookie_secure)
    csrf = asgi_csrf(
        app, signing_secret=keys, cookie_secure=settings.cookie_secure,
        always_protect={"/login", "/setup"},
        skip_if_scope=lambda scope: scope["path"].startswith(CSRF_FREE_PREFIXES),
    )
    return _Wrapped(app, trust_forwarded(_security_headers(_csrf_free_straight_in(
        app, guard_forms(csrf, skip_prefixes=CSRF_FREE_PREFIXES))), settings.trusted_proxies))


def _csrf_free_straight_in(app, guarded):
    """Send the CSRF-free paths (API, receivers, probes, static files) to the app without the CSRF layer, which would
    otherwise mint and sign a token for every such request (each webhook delivery, say) that nothing reads."""

    async def route(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(CSRF_FREE_PREFIXES):
            return await app(scope, receive, send)
        return await guarded(scope, receive, send)

    return route


class _KeyRingSessions(SessionMiddleware):
    """Starlette's signed-cookie sessions under every key of BLAMETRAIL_SECRET_KEY: the newest signs, any verifies, and
    a cookie an older key signed is signed again with the newest, so old keys can go without logging anyone out."""

    def __init__(self, app, *, secret_keys: list[str], **options) -> None:
        super().__init__(_resign_when_asked(app), secret_key=secret_keys[-1], **options)
        self.signer = itsdangerous.TimestampSigner(secret_keys)  # why: Starlette takes one key, itsdangerous a list
        self._newest = itsdangerous.TimestampSigner(secret_keys[-1]) if len(secret_keys) > 1 else None

    async def __call__(self, scope, receive, send):
        if self._newest is not None and scope["type"] in ("http", "websocket"):
            cookie = HTTPConnection(scope).cookies.get(self.session_cookie)
            scope[RESIGN_SESSION] = bool(cookie) and not self._newest.validate(cookie, max_age=self.max_age) \
                and self.signer.validate(cookie, max_age=self.max_age)
        await super().__call__(scope, receive, send)


def _resign_when_asked(app):
    async def wrapped(scope, receive, send):
        if scope.get(RESIGN_SESSION):
            # why: Starlette sends the cookie again only when the session changed; marking it sends it newly signed
            mark = getattr(scope["session"], "mark_modified", None)
            if mark is not None:
                mark()
        await app(scope, receive, send)

    return wrapped


class _Wrapped:
    """The ASGI callable with CSRF and headers outside, keeping the FastAPI app reachable as `.app`."""

    def __init__(self, app: FastAPI, asgi) -> None:
        self.app = app
        self._asgi = asgi
        self.state = app.state

    async def __call__(self, scope, receive, send):
        await self._asgi(scope, receive, send)
