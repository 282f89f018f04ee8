"""Route-generated security suites: the app's route list, the route table, and a world of two organizations.

The route table (ROUTES) names, for every (method, path) the app serves, the Action the role table requires (or
PUBLIC / RECEIVER), the state an incident must be in, and the body a permitted caller sends. PARAMS names, for every
path-parameter name, how to make a record it can point at. `check_table_covers` fails on any route or parameter
the tables do not know, so a new route cannot slip past the isolation and role suites.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from blametrail import db, netguard
from blametrail.ai import service as ai
from blametrail.clock import FrozenClock
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import CommitIn, DeployCreate
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.integrations import service as connections
from blametrail.integrations.schemas import ConnectionCreate
from blametrail.models import Base
from blametrail.monitors import service as monitors
from blametrail.monitors.schemas import MonitorCreate
from blametrail.orgs import invitations
from blametrail.orgs import service as orgs
from blametrail.orgs.models import MonthlyUsage, Organization
from blametrail.orgs.permissions import ALLOWED, Action
from blametrail.outbound import service as outbound
from blametrail.outbound.models import OutboundEndpoint
from blametrail.postmortems import customer, reviews
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Postmortem
from blametrail.settings import Settings
from blametrail.vendors import service as vendors
from blametrail.web.pages import editform
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.service import KIND_BY_PATH
from tests.conftest import START, _truncate_pg

PUBLIC = "public"  # no actor: home, login, logout, setup (tests/security/test_auth_security.py)
RECEIVER = "receiver"  # webhook receivers: the webhook's secret authenticates the sender
VENDOR = "vendor"  # vendor calls (/inbound/<kind>/{inbound_uid}/<name>): the vendor's own signature authenticates them
ROLES = ("owner", "admin", "member", "viewer")
PASSWORD = "correct-horse-battery"
SKIPPED = {"/docs", "/openapi.json", "/healthz", "/readyz"}  # no data behind them (docs, schema, liveness, readiness)
SESSION_COOKIE = "blametrail_session"
HTML = {"accept": "text/html,application/xhtml+xml"}


# --- the app's routes -------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Route:
    method: str
    path: str

    @property
    def kind(self) -> str:
        """api, receiver or page."""
        if self.path.startswith("/api/"):
            return "api"
        if self.path.startswith("/webhooks/"):
            return "receiver"
        if self.path.startswith("/inbound/"):
            return "vendor"
        return "page"

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::[^}]*)?}", self.path)

    def url(self, values: dict) -> str:
        return re.sub(r"{(\w+)(?::[^}]*)?}", lambda m: str(values[m.group(1)]), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _contexts(fastapi_app) -> Iterator:
    # why: FastAPI ≥ 0.16x keeps included routers lazy (`_IncludedRouter`); iter_route_contexts flattens them the way
    # the OpenAPI generator does. Older versions list plain routes.
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)
    return iter(flatten(fastapi_app.routes) if flatten else fastapi_app.routes)


def app_routes(app) -> list[Route]:
    """Return every (method, path) the app serves (HEAD and data-free routes aside); fail on what cannot be called."""
    fastapi_app = getattr(app, "app", app)
    found: set[Route] = set()
    for ctx in _contexts(fastapi_app):
        path = getattr(ctx, "path", None)
        if path in SKIPPED or path == "/static" or (path or "").startswith("/static/"):
            continue
        methods = getattr(ctx, "methods", None)
        if not path or not methods:
            raise AssertionError(f"{ctx!r} at {path!r} is not an HTTP route with methods (a mount or websocket?): "
                                 "teach tests/security/routes_support.py how to call it")
        found.update(Route(m, path) for m in methods if m != "HEAD")
    return sorted(found)


def query_id_params(app, route: Route) -> list[str]:
    """Return the route's query parameters that name a record (`*_id`), e.g. GET /api/v1/alerts?incident_id=."""
    for ctx in _contexts(getattr(app, "app", app)):
        if getattr(ctx, "path", None) == route.path and route.method in (getattr(ctx, "methods", None) or ()):
            dependant = getattr(ctx, "dependant", None)
            return [p.name for p in (dependant.query_params if dependant else []) if p.name.endswith("_id")]
    return []


# --- the route table --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    action: Action | str  # the Action the role table requires, or PUBLIC / RECEIVER
    incident: str = "drafted"  # what {incident_id} points at: drafted (resolved, draft ready), published, resolved, open
    body: Callable[[Call], dict] | None = None  # JSON (API) or form fields (pages) a permitted caller sends
    consumes: bool = False  # a success uses the record up (resolve, publish, delete…): the next caller needs a new one
    prepare: Callable[[World, Side], None] | None = None  # state the organization needs before each call


R, W, PW, PUB, M, OS = (Action.READ, Action.WRITE_INCIDENTS, Action.POSTMORTEM_WRITE, Action.PUBLISH, Action.MANAGE,
                        Action.ORG_SETTINGS)


def _edit_form(c: Call) -> dict:
    """The editor's fields for the stored draft (as a browser submits them), with a changed summary."""
    sections, version = c.world.postmortem(c.ids["incident_id"])
    v = editform.values_from_sections(sections)
    form = {k: v[k] for k in ("severity", "impact_description", "impact_duration", "impact_services", "root_cause",
                              "contributing_factors", "what_went_well", "what_went_poorly", "confidence_level",
                              "confidence_reason")}
    form |= {"summary": f"Edited summary {c.n}", "version": str(version)}
    for prefix, rows, keys in (("action", v["action_items"], ("title", "priority", "owner")),
                               ("timeline", v["timeline"], ("at", "source", "description", "evidence"))):
        for key in keys:
            form[f"{prefix}_{key}"] = [row[key] for row in rows]
    return form


def _pm_patch(c: Call) -> dict:
    return {"version": c.world.postmortem(c.ids["incident_id"])[1], "sections": {"summary": f"Edited {c.n}"}}


def _monitor_form(c: Call) -> dict:
    return {"name": f"{c.marker} monitor form {c.n}", "url": "http://127.0.0.1:9/health", "expected_statuses": "200"}


ROUTES: dict[tuple[str, str], Spec] = {
    # JSON API: incidents, deploys, alerts
    ("GET", "/api/v1/incidents"): Spec(R),
    ("POST", "/api/v1/incidents"): Spec(W, body=lambda c: {"title": f"{c.marker} api incident {c.n}",
                                                           "services": ["checkout"]}),
    ("GET", "/api/v1/incidents/{incident_id}"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/summary"): Spec(R),
    ("POST", "/api/v1/incidents/{incident_id}/updates"): Spec(W, body=lambda c: {"body": f"update {c.n}"}),
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): Spec(W, incident="open", consumes=True),
    ("GET", "/api/v1/deploys"): Spec(R),
    ("POST", "/api/v1/deploys"): Spec(W, body=lambda c: {"service": "checkout", "version": f"{c.marker}-v{c.n}"}),
    ("GET", "/api/v1/deploys/{deploy_id}"): Spec(R),
    ("GET", "/api/v1/alerts"): Spec(R),
    # JSON API and pages: action items (H1)
    ("GET", "/api/v1/action-items"): Spec(R),
    ("GET", "/api/v1/search"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/similar"): Spec(R),
    ("GET", "/api/v1/analytics"): Spec(R),
    ("GET", "/api/v1/analytics.csv"): Spec(R),
    ("GET", "/api/v1/action-items/{item_id}"): Spec(R),
    ("PATCH", "/api/v1/action-items/{item_id}"): Spec(W, body=lambda c: {"status": "in_progress"}),
    ("POST", "/api/v1/incidents/{incident_id}/action-items"): Spec(W, body=lambda c: {"title": f"{c.marker} ai {c.n}"}),
    ("POST", "/api/v1/incidents/{incident_id}/action-items/from-draft"): Spec(W),
    ("GET", "/action-items"): Spec(R),
    ("GET", "/search"): Spec(R),
    ("GET", "/analytics"): Spec(R),
    ("GET", "/analytics.csv"): Spec(R),
    ("GET", "/action-items/{item_id}"): Spec(R),
    ("POST", "/action-items/{item_id}"): Spec(W, body=lambda c: {"title": f"{c.marker} edited {c.n}",
                                                                "status": "open", "priority": "low"}),
    ("POST", "/action-items/{item_id}/status"): Spec(W, body=lambda c: {"status": "done"}),
    ("POST", "/action-items/{item_id}/close-duplicate"): Spec(W),
    ("POST", "/action-items/{item_id}/keep-separate"): Spec(W),
    ("GET", "/incidents/{incident_id}/action-items"): Spec(R),
    ("POST", "/incidents/{incident_id}/action-items"): Spec(W, body=lambda c: {"title": f"{c.marker} page ai {c.n}"}),
    ("POST", "/incidents/{incident_id}/action-items/from-draft"): Spec(W),
    # JSON API: postmortems
    ("GET", "/api/v1/incidents/{incident_id}/postmortem"): Spec(R),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem"): Spec(PW, incident="resolved", consumes=True),
    ("PATCH", "/api/v1/incidents/{incident_id}/postmortem"): Spec(PW, body=_pm_patch),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/regenerate"): Spec(PW),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/publish"): Spec(PUB, consumes=True),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/published"): Spec(R, incident="published"),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/customer"): Spec(R, incident="customer"),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/pages"): Spec(
        PUB, incident="published", prepare=lambda w, side: w.notion(side), body=lambda c: {"target": "notion"}),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/customer"): Spec(PW, incident="published"),
    ("PATCH", "/api/v1/incidents/{incident_id}/postmortem/customer"): Spec(
        PW, incident="customer", body=lambda c: {"impact": f"Impact {c.n}"}),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/customer/publish"): Spec(PUB, incident="customer"),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/customer/withdraw"): Spec(PUB, incident="customer"),
    # review and comments
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/comments"): Spec(R),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/comments"): Spec(
        W, body=lambda c: {"section": "summary", "body": f"{c.marker} comment {c.n}"}),
    ("PATCH", "/api/v1/postmortem-comments/{comment_id}"): Spec(W, body=lambda c: {"resolved": True}),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/reviews"): Spec(R),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/reviews"): Spec(
        PW, incident="review", body=lambda c: {"reviewer_ids": [c.side.owner.user_id]}),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/reviews/decision"): Spec(
        PW, incident="review", body=lambda c: {"decision": "approve"}),
    ("POST", "/incidents/{incident_id}/postmortem/comments"): Spec(
        W, body=lambda c: {"section": "summary", "body": f"{c.marker} page comment {c.n}"}),
    ("POST", "/postmortem-comments/{comment_id}/resolve"): Spec(
        W, body=lambda c: {"resolved": "1"}),
    ("POST", "/incidents/{incident_id}/postmortem/reviews"): Spec(
        PW, incident="review", body=lambda c: {"reviewer_ids": str(c.side.owner.user_id)}),
    ("POST", "/incidents/{incident_id}/postmortem/reviews/decision"): Spec(
        PW, incident="review", body=lambda c: {"decision": "approve"}),
    ("POST", "/settings/review"): Spec(OS, body=lambda c: {"review_mode": "optional"}),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/original"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/revisions"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/revisions/{number}"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/runs"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/export.md"): Spec(R),
    ("GET", "/api/v1/incidents/{incident_id}/postmortem/export.pdf"): Spec(R),
    # JSON API: monitors, webhooks, connections
    ("GET", "/api/v1/monitors"): Spec(R),
    ("POST", "/api/v1/monitors"): Spec(M, body=lambda c: {"name": f"{c.marker} api monitor {c.n}",
                                                          "url": "http://127.0.0.1:9/health"}),
    ("GET", "/api/v1/monitors/{monitor_id}"): Spec(R),
    ("PATCH", "/api/v1/monitors/{monitor_id}"): Spec(M, body=lambda c: {"name": f"{c.marker} renamed {c.n}"}),
    ("DELETE", "/api/v1/monitors/{monitor_id}"): Spec(M, consumes=True),
    ("GET", "/api/v1/monitors/{monitor_id}/checks"): Spec(R),
    ("GET", "/api/v1/webhooks"): Spec(R),
    ("POST", "/api/v1/webhooks"): Spec(M, body=lambda c: {"kind": "alertmanager", "name": f"{c.marker} hook {c.n}"}),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Spec(R),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Spec(M),
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): Spec(M),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Spec(R),
    ("GET", "/api/v1/connections"): Spec(R),
    ("POST", "/api/v1/connections"): Spec(M, body=lambda c: {"name": f"{c.marker} api conn {c.n}", "provider": "fake",
                                                             "credentials": {"token": "t0ken"}}),
    ("GET", "/api/v1/connections/{connection_id}"): Spec(R),
    ("PATCH", "/api/v1/connections/{connection_id}"): Spec(M, body=lambda c: {"name": f"{c.marker} conn {c.n}"}),
    ("DELETE", "/api/v1/connections/{connection_id}"): Spec(M, consumes=True),
    ("POST", "/api/v1/connections/{connection_id}/test"): Spec(M),
    # JSON API: the organization
    ("GET", "/api/v1/org/settings"): Spec(R),
    ("PATCH", "/api/v1/org/settings"): Spec(OS, body=lambda c: {"ai_enabled": True}),
    ("GET", "/api/v1/org/usage"): Spec(R),
    ("GET", "/api/v1/org/template"): Spec(R),
    ("PUT", "/api/v1/org/template"): Spec(M, body=lambda c: {"service_owners": {"checkout": f"{c.marker} team"}}),
    ("GET", "/api/v1/org/ai"): Spec(M),
    ("PUT", "/api/v1/org/ai"): Spec(OS, body=lambda c: {"engine": "builtin"}),
    ("DELETE", "/api/v1/org/ai"): Spec(OS, prepare=lambda w, side: w.ai_config(side)),
    ("POST", "/api/v1/org/ai/test"): Spec(M),  # no body: tests the configuration in effect (built-in here)
    # JSON API: vendor integrations ({kind} names a vendor, not a record: other organizations' settings never show)
    ("GET", "/api/v1/integrations"): Spec(R),
    ("GET", "/api/v1/integrations/{kind}"): Spec(R),
    ("PUT", "/api/v1/integrations/{kind}"): Spec(M, body=lambda c: {"bot_token": f"xoxb-{c.n}", "signing_secret": "s",
                                                                    "base_url": "http://127.0.0.1:9/api/"}),
    ("DELETE", "/api/v1/integrations/{kind}"): Spec(M, prepare=lambda w, side: w.vendor(side)),
    ("POST", "/api/v1/integrations/{kind}/test"): Spec(M, prepare=lambda w, side: w.vendor(side)),
    # Slack: an incident's channel (the import job meets a closed port here), and Slack's signed calls to us
    ("GET", "/api/v1/incidents/{incident_id}/slack-channel"): Spec(R),
    ("POST", "/api/v1/incidents/{incident_id}/slack-channel"): Spec(W, prepare=lambda w, side: w.vendor(side),
                                                                   body=lambda c: {"channel_id": f"C0ROUTE{c.n}"}),
    ("POST", "/inbound/slack/{inbound_uid}/events"): Spec(VENDOR),
    ("POST", "/inbound/slack/{inbound_uid}/commands"): Spec(VENDOR),
    ("GET", "/api/v1/org/members"): Spec(R),
    ("POST", "/api/v1/org/members"): Spec(M, body=lambda c: {"email": f"invited{c.n}@{c.marker}.test",
                                                             "role": "viewer"}),
    ("PATCH", "/api/v1/org/members/{user_id}"): Spec(M, body=lambda c: {"role": "viewer"}),
    ("DELETE", "/api/v1/org/members/{user_id}"): Spec(M, consumes=True),
    ("GET", "/api/v1/org/invitations"): Spec(M),
    ("DELETE", "/api/v1/org/invitations/{invitation_id}"): Spec(M, consumes=True),
    ("GET", "/api/v1/org/tokens"): Spec(R),
    ("POST", "/api/v1/org/tokens"): Spec(R, body=lambda c: {"name": f"{c.marker} own token {c.n}"}),  # one's own
    ("DELETE", "/api/v1/org/tokens/{token_id}"): Spec(M),  # {token_id} is someone else's token
    # receivers (the webhook's secret authenticates; tests/security/test_route_isolation.py)
    ("POST", "/webhooks/alertmanager/{uid}"): Spec(RECEIVER),
    ("POST", "/webhooks/grafana/{uid}"): Spec(RECEIVER),
    ("POST", "/webhooks/alerts/{uid}"): Spec(RECEIVER),
    ("POST", "/webhooks/github/{uid}"): Spec(RECEIVER),
    ("POST", "/webhooks/deploys/{uid}"): Spec(RECEIVER),
    # pages: logging in
    ("GET", "/"): Spec(PUBLIC),
    ("GET", "/login"): Spec(PUBLIC),
    ("POST", "/login"): Spec(PUBLIC),
    ("POST", "/logout"): Spec(PUBLIC),
    ("GET", "/setup"): Spec(PUBLIC),
    ("POST", "/setup"): Spec(PUBLIC),
    ("GET", "/invite/{token}"): Spec(PUBLIC),  # the link's token authenticates (tests/orgs/test_invitations.py)
    ("POST", "/invite/{token}"): Spec(PUBLIC),
    # pages: one's own account (every role; {org_id} is an organization that invited the caller)
    ("GET", "/account"): Spec(R),
    ("POST", "/account/password"): Spec(R, body=lambda c: {"current_password": PASSWORD, "new_password": PASSWORD,
                                                           "confirm_password": PASSWORD}),
    ("POST", "/account/switch"): Spec(R, body=lambda c: {"org_id": str(c.side.org_id)}),
    ("POST", "/account/invitations/{org_id}/accept"): Spec(R, consumes=True),
    ("POST", "/account/invitations/{org_id}/decline"): Spec(R, consumes=True),
    # pages: incidents and postmortems
    ("GET", "/incidents"): Spec(R),
    ("POST", "/incidents"): Spec(W, body=lambda c: {"title": f"{c.marker} page incident {c.n}", "severity": "SEV-3",
                                                    "services": "checkout"}),
    ("GET", "/incidents/{incident_id}"): Spec(R),
    ("POST", "/incidents/{incident_id}/updates"): Spec(W, body=lambda c: {"body": f"page update {c.n}"}),
    ("POST", "/incidents/{incident_id}/resolve"): Spec(W, incident="open", consumes=True, body=lambda c: {"confirm": "yes"}),
    ("GET", "/incidents/{incident_id}/summary"): Spec(R),
    ("GET", "/incidents/{incident_id}/evidence/{evidence_id}"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem"): Spec(R),  # the document page
    ("GET", "/incidents/{incident_id}/postmortem/card"): Spec(R),
    ("POST", "/incidents/{incident_id}/postmortem/generate"): Spec(PW, incident="resolved", consumes=True),
    ("POST", "/incidents/{incident_id}/postmortem/regenerate"): Spec(PW),
    ("POST", "/incidents/{incident_id}/postmortem/publish"): Spec(PUB, consumes=True, body=lambda c: {"confirm": "yes"}),
    ("GET", "/incidents/{incident_id}/postmortem/customer"): Spec(R, incident="customer"),
    ("POST", "/settings/public-postmortems"): Spec(OS, body=lambda c: {"public_postmortems": "true", "confirm": "yes"}),
    ("POST", "/incidents/{incident_id}/postmortem/customer/make"): Spec(PW, incident="customer",
                                                                       body=lambda c: {"confirm": "yes"}),
    ("POST", "/incidents/{incident_id}/postmortem/customer"): Spec(PW, incident="customer", body=lambda c: {
        "impact": f"Impact {c.n}", "what_happened": "x", "what_we_are_changing": "- y"}),
    ("POST", "/incidents/{incident_id}/postmortem/customer/publish"): Spec(PUB, incident="customer",
                                                                          body=lambda c: {"confirm": "yes"}),
    ("POST", "/incidents/{incident_id}/postmortem/customer/withdraw"): Spec(PUB, incident="customer",
                                                                           body=lambda c: {"confirm": "yes"}),
    ("GET", "/public/postmortems/{public_token}"): Spec(PUBLIC),
    ("GET", "/incidents/{incident_id}/postmortem/edit"): Spec(PW),
    ("POST", "/incidents/{incident_id}/postmortem/edit"): Spec(PW, body=_edit_form),
    ("POST", "/incidents/{incident_id}/postmortem/preview"): Spec(PW, body=lambda c: {"field": "summary",
                                                                                        "summary": "**Preview**"}),
    ("GET", "/incidents/{incident_id}/postmortem/original"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem/revisions"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem/revisions/{number}"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem/compare"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem/export.md"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem/print"): Spec(R),
    ("GET", "/incidents/{incident_id}/postmortem/export.pdf"): Spec(R),
    ("POST", "/incidents/{incident_id}/slack-channel"): Spec(W, prepare=lambda w, side: w.vendor(side),
                                                              body=lambda c: {"channel_id": f"C0PAGE{c.n}"}),
    # action items in trackers (GitHub Issues here: a local wire server this world starts once)
    ("GET", "/api/v1/action-items/{item_id}/external"): Spec(R),
    ("POST", "/api/v1/action-items/{item_id}/external"): Spec(W, prepare=lambda w, side: w.github(side),
                                                              body=lambda c: {"tracker": "github_issues"},
                                                              consumes=True),
    ("POST", "/action-items/{item_id}/external"): Spec(W, prepare=lambda w, side: w.github(side),
                                                     body=lambda c: {"tracker": "github_issues"}, consumes=True),
    ("POST", "/inbound/pagerduty/{inbound_uid}/webhook"): Spec(VENDOR),
    ("POST", "/inbound/opsgenie/{inbound_uid}/webhook"): Spec(VENDOR),
    ("POST", "/inbound/github_issues/{inbound_uid}/webhook"): Spec(VENDOR),
    ("POST", "/inbound/linear/{inbound_uid}/webhook"): Spec(VENDOR),
    ("POST", "/inbound/jira/{inbound_uid}/webhook"): Spec(VENDOR),
    # outbound webhooks (the test app's endpoints point at a closed port: sends fail, nothing leaves)
    ("GET", "/api/v1/outbound-webhooks"): Spec(R),
    ("POST", "/api/v1/outbound-webhooks"): Spec(M, body=lambda c: {"url": "http://127.0.0.1:9/hook",
                                                                   "events": ["incident.opened"]}),
    ("GET", "/api/v1/outbound-webhooks/{endpoint_id}"): Spec(R),
    ("PATCH", "/api/v1/outbound-webhooks/{endpoint_id}"): Spec(M, body=lambda c: {"description": f"{c.marker} {c.n}"}),
    ("DELETE", "/api/v1/outbound-webhooks/{endpoint_id}"): Spec(M, consumes=True),
    ("POST", "/api/v1/outbound-webhooks/{endpoint_id}/rotate-secret"): Spec(M),
    ("GET", "/api/v1/outbound-webhooks/{endpoint_id}/deliveries"): Spec(R),
    ("POST", "/api/v1/outbound-webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): Spec(M),
    ("POST", "/api/v1/outbound-webhooks/{endpoint_id}/test"): Spec(M),
    ("GET", "/settings/outbound-webhooks"): Spec(R),
    ("POST", "/settings/outbound-webhooks"): Spec(M, body=lambda c: {"url": "http://127.0.0.1:9/hook",
                                                                     "events": "incident.opened"}),
    ("GET", "/settings/outbound-webhooks/{endpoint_id}"): Spec(R),
    ("POST", "/settings/outbound-webhooks/{endpoint_id}/test"): Spec(M),
    ("POST", "/settings/outbound-webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): Spec(M),
    ("POST", "/settings/outbound-webhooks/{endpoint_id}/rotate"): Spec(M, body=lambda c: {"confirm": "yes"}),
    ("POST", "/settings/outbound-webhooks/{endpoint_id}/enabled"): Spec(M, body=lambda c: {"enabled": "1"}),
    ("POST", "/settings/outbound-webhooks/{endpoint_id}/delete"): Spec(M, consumes=True,
                                                                       body=lambda c: {"confirm": "yes"}),
    # pages: chat, paging and tracker integrations ({kind} names a vendor)
    ("GET", "/settings/integrations"): Spec(R),
    ("GET", "/settings/integrations/{kind}"): Spec(R),
    ("POST", "/settings/integrations/{kind}"): Spec(M, body=lambda c: {"bot_token": f"xoxb-page-{c.n}",
                                                                       "signing_secret": "s",
                                                                       "base_url": "http://127.0.0.1:9/api/"}),
    ("POST", "/settings/integrations/{kind}/test"): Spec(M, prepare=lambda w, side: w.vendor(side)),
    ("POST", "/settings/integrations/{kind}/remove"): Spec(M, prepare=lambda w, side: w.vendor(side),
                                                           body=lambda c: {"confirm": "yes"}),
    # pages: settings
    ("GET", "/settings"): Spec(R),
    ("POST", "/settings/ai"): Spec(OS, body=lambda c: {"ai_enabled": "true"}),
    ("GET", "/settings/members"): Spec(R),
    ("POST", "/settings/members"): Spec(M, body=lambda c: {"email": f"page{c.n}@{c.marker}.test", "role": "viewer"}),
    ("POST", "/settings/members/{user_id}/role"): Spec(M, body=lambda c: {"role": "viewer"}),
    ("POST", "/settings/members/{user_id}/remove"): Spec(M, consumes=True, body=lambda c: {"confirm": "yes"}),
    ("POST", "/settings/invitations/{invitation_id}/revoke"): Spec(M, consumes=True),
    ("GET", "/settings/tokens"): Spec(R),
    ("POST", "/settings/tokens"): Spec(R, body=lambda c: {"name": f"{c.marker} page token {c.n}"}),  # one's own
    ("POST", "/settings/tokens/{token_id}/revoke"): Spec(M),  # {token_id} is someone else's token
    ("GET", "/settings/monitors"): Spec(R),
    ("POST", "/settings/monitors"): Spec(M, body=_monitor_form),
    ("GET", "/settings/monitors/{monitor_id}"): Spec(R),
    ("POST", "/settings/monitors/{monitor_id}"): Spec(M, body=_monitor_form),
    ("POST", "/settings/monitors/{monitor_id}/enable"): Spec(M),
    ("POST", "/settings/monitors/{monitor_id}/disable"): Spec(M),
    ("POST", "/settings/monitors/{monitor_id}/delete"): Spec(M, consumes=True),
    ("GET", "/settings/webhooks"): Spec(R),
    ("POST", "/settings/webhooks"): Spec(M, body=lambda c: {"kind": "alertmanager", "name": f"{c.marker} hook {c.n}",
                                                            "default_severity": "SEV-3"}),
    ("GET", "/settings/webhooks/{webhook_id}"): Spec(R),
    ("POST", "/settings/webhooks/{webhook_id}/rotate"): Spec(M),
    ("POST", "/settings/webhooks/{webhook_id}/disable"): Spec(M),
    ("GET", "/settings/connections"): Spec(R),
    ("POST", "/settings/connections"): Spec(M, body=lambda c: {"provider": "fake", "name": f"{c.marker} conn {c.n}",
                                                               "endpoint": "", "cred_token": "t0ken"}),
    ("GET", "/settings/connections/{connection_id}"): Spec(R),
    ("POST", "/settings/connections/{connection_id}"): Spec(M, body=lambda c: {"name": f"{c.marker} conn {c.n}",
                                                                               "endpoint": "", "enabled": "on"}),
    ("POST", "/settings/connections/{connection_id}/delete"): Spec(M, consumes=True),
    ("POST", "/settings/connections/{connection_id}/test"): Spec(M),
    # pages: the drafting model (owners change it, admins read it) and the postmortem template (everyone reads it)
    ("GET", "/settings/model"): Spec(M),
    ("POST", "/settings/model"): Spec(OS, body=lambda c: {"engine": "builtin", "confirm": "yes"}),
    ("POST", "/settings/model/test"): Spec(M),  # tests the settings in effect: the built-in engine, nothing sent
    ("POST", "/settings/model/reset"): Spec(OS, body=lambda c: {"confirm": "yes"},
                                           prepare=lambda w, side: w.ai_config(side)),
    ("GET", "/settings/template"): Spec(R),
    ("POST", "/settings/template"): Spec(M, body=lambda c: {"owner_service": "checkout",
                                                            "owner_team": f"{c.marker} page team {c.n}"}),
}


def spec_of(route: Route) -> Spec:
    return ROUTES[(route.method, route.path)]


def table_routes() -> list[Route]:
    return sorted(Route(m, p) for m, p in ROUTES)


# --- what a path parameter points at ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    make: Callable  # (world, side, route, spec, ids so far) -> the value to put in the path
    owned: bool = True  # a record of the organization (False: a position inside the record before it)


PARAMS: dict[str, Param] = {
    "incident_id": Param(lambda w, side, route, spec, ids: w.incident(side, spec.incident)),
    "number": Param(lambda w, side, route, spec, ids: w.revision_number(ids["incident_id"]), owned=False),
    "evidence_id": Param(lambda w, side, route, spec, ids: w.evidence_id(ids["incident_id"])),
    "deploy_id": Param(lambda w, side, route, spec, ids: w.deploy(side)),
    "monitor_id": Param(lambda w, side, route, spec, ids: w.monitor(side)),
    "webhook_id": Param(lambda w, side, route, spec, ids: w.webhook(side)["id"]),
    "connection_id": Param(lambda w, side, route, spec, ids: w.connection(side)),
    "user_id": Param(lambda w, side, route, spec, ids: w.member(side)),
    "token_id": Param(lambda w, side, route, spec, ids: w.token(side)),
    "invitation_id": Param(lambda w, side, route, spec, ids: w.invitation(side)[0]),
    "token": Param(lambda w, side, route, spec, ids: w.invitation(side)[1], owned=False),
    "kind": Param(lambda w, side, route, spec, ids: "slack", owned=False),
    "public_token": Param(lambda w, side, route, spec, ids: w.customer_token(side), owned=False),
    "inbound_uid": Param(lambda w, side, route, spec, ids: w.vendor(side, route.path.split("/")[2])["uid"]),
    "org_id": Param(lambda w, side, route, spec, ids: w.inviting_org(side)),
    "uid": Param(lambda w, side, route, spec, ids: w.webhook(side, receiver_kind(route))["uid"]),
    "item_id": Param(lambda w, side, route, spec, ids: w.action_item(side)),
    "comment_id": Param(lambda w, side, route, spec, ids: w.comment(side)),
    "endpoint_id": Param(lambda w, side, route, spec, ids: w.outbound_endpoint(side)),
    "delivery_id": Param(lambda w, side, route, spec, ids: w.outbound_delivery(ids["endpoint_id"])),
}


# Settings that set each vendor up (n makes each organization's secrets differ); the tests never reach a vendor.
VENDOR_SETTINGS: dict[str, Callable[[int], dict]] = {
    "slack": lambda n: {"bot_token": f"xoxb-{n}", "signing_secret": f"slack-signing-{n}",
                        "base_url": "http://127.0.0.1:9/api/"},
    "pagerduty": lambda n: {"signing_secret": f"pd-{n}"},
    "opsgenie": lambda n: {"inbound_secret": f"og-{n}"},
    "github_issues": lambda n: {"token": f"ghp_{n}", "repository": "acme/checkout", "webhook_secret": f"gh-hook-{n}",
                                "base_url": "http://127.0.0.1:9"},
    "linear": lambda n: {"api_key": f"lin_{n}", "team_id": "team-1", "webhook_secret": f"lin-hook-{n}",
                         "base_url": "http://127.0.0.1:9"},
    "jira": lambda n: {"site_url": "http://127.0.0.1:9", "email": "a@b.test", "api_token": f"jira-{n}",
                       "project_key": "OPS", "webhook_secret": f"jira-hook-{n}"},
}


# Route path -> make(settings, world) -> (body bytes, headers): a harmless call signed the way the vendor signs it.
def _slack_signed(body: bytes, settings: dict, world: World, content_type: str) -> tuple[bytes, dict]:
    """Sign a call the way Slack does: v0=HMAC-SHA256(signing secret, "v0:<timestamp>:<body>")."""
    stamp = str(int(world.now().timestamp()))
    digest = hmac.new(settings["signing_secret"].encode(), b"v0:" + stamp.encode() + b":" + body,
                      hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
                  "Content-Type": content_type}


def _hub_signed(body: bytes, settings: dict, header: str, extra: dict) -> tuple[bytes, dict]:
    """Sign as GitHub (X-Hub-Signature-256) and Jira (X-Hub-Signature) do: sha256=<hex HMAC of the body>."""
    digest = hmac.new(settings["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()
    return body, {header: f"sha256={digest}", "Content-Type": "application/json", **extra}


def _pagerduty_signed(settings: dict) -> tuple[bytes, dict]:
    """Sign as PagerDuty does: X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>; an event it ignores."""
    body = json.dumps({"event": {"id": secrets.token_hex(8), "event_type": "service.updated", "data": {}}}).encode()
    digest = hmac.new(settings["signing_secret"].encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-PagerDuty-Signature": f"v1={digest}", "Content-Type": "application/json"}


def _linear_signed(settings: dict, world: World) -> tuple[bytes, dict]:
    """Sign as Linear does: Linear-Signature = hex HMAC-SHA256 of the body; webhookTimestamp in milliseconds."""
    body = json.dumps({"action": "create", "type": "Comment", "data": {"id": "c1"},
                       "webhookTimestamp": int(world.now().timestamp() * 1000)}).encode()
    digest = hmac.new(settings["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()
    return body, {"Linear-Signature": digest, "Linear-Delivery": secrets.token_hex(8),
                  "Content-Type": "application/json"}


VENDOR_CALLS: dict[str, Callable[[dict, World], tuple[bytes, dict]]] = {
    "/inbound/slack/{inbound_uid}/events": lambda settings, world: _slack_signed(
        json.dumps({"type": "url_verification", "challenge": "c" * 20}).encode(), settings, world, "application/json"),
    "/inbound/github_issues/{inbound_uid}/webhook": lambda settings, world: _hub_signed(
        b'{"zen": "Keep it logically awesome.", "hook_id": 1}', settings, "X-Hub-Signature-256",
        {"X-GitHub-Event": "ping", "X-GitHub-Delivery": secrets.token_hex(8)}),
    "/inbound/linear/{inbound_uid}/webhook": lambda settings, world: _linear_signed(settings, world),
    "/inbound/pagerduty/{inbound_uid}/webhook": lambda settings, world: _pagerduty_signed(settings),
    "/inbound/opsgenie/{inbound_uid}/webhook": lambda settings, world: (
        b'{"action": "Assign", "alert": {"alertId": "a1", "updatedAt": 1}}',
        {"X-BlameTrail-Token": settings["inbound_secret"], "Content-Type": "application/json"}),
    "/inbound/jira/{inbound_uid}/webhook": lambda settings, world: _hub_signed(
        b'{"webhookEvent": "jira:worklog_updated", "worklog": {"id": "1"}}', settings, "X-Hub-Signature",
        {"X-Atlassian-Webhook-Identifier": secrets.token_hex(8)}),
    "/inbound/slack/{inbound_uid}/commands": lambda settings, world: _slack_signed(
        b"command=%2Fblametrail&text=help&channel_id=C0NONE&user_name=dana", settings, world,
        "application/x-www-form-urlencoded"),
}


def receiver_kind(route: Route) -> str:
    """The webhook kind a receiver path serves (/webhooks/<path>/{uid})."""
    segment = route.path.split("/")[2]
    if segment not in KIND_BY_PATH:
        raise AssertionError(f"{route}: no webhook kind is served at /webhooks/{segment}/ (webhooks.service.URL_PATH)")
    return KIND_BY_PATH[segment]


def check_table_covers(app) -> None:
    """Fail unless ROUTES lists exactly the app's routes and every path parameter has a factory."""
    served, listed = set(app_routes(app)), set(table_routes())
    problems = [f"not in ROUTES (add it with its Action): {r}" for r in sorted(served - listed)]
    problems += [f"in ROUTES but not served any more: {r}" for r in sorted(listed - served)]
    for route in sorted(served & listed):
        problems += [f"{route}: no factory in PARAMS for {{{p}}}" for p in route.params if p not in PARAMS]
        if route.kind == "receiver" and spec_of(route).action != RECEIVER:
            problems.append(f"{route}: a /webhooks/ route must be a RECEIVER")
        if route.kind == "receiver":
            try:
                receiver_kind(route)
            except AssertionError as exc:
                problems.append(str(exc))
        if (route.kind == "vendor") != (spec_of(route).action == VENDOR):
            problems.append(f"{route}: /inbound/ routes, and only they, are VENDOR routes")
        if route.kind == "vendor" and route.path.split("/")[3] != "{inbound_uid}":
            problems.append(f"{route}: a vendor route is /inbound/<kind>/{{inbound_uid}}/<name>")
        if route.kind == "vendor" and route.path not in VENDOR_CALLS:
            problems.append(f"{route}: no signed call in VENDOR_CALLS (the isolation suite sends one per route)")
        if route.kind == "api" and spec_of(route).action in (PUBLIC, RECEIVER, VENDOR):
            problems.append(f"{route}: every /api/ route needs an Action")
    assert not problems, "route table out of date:\n" + "\n".join(problems)


def allowed(role: str, action: Action) -> bool:
    return role in ALLOWED[action]


# --- the world: two organizations, each with a member per role, tokens and logged-in browsers -------------------


@dataclass
class Side:
    """One organization as the suites see it."""

    slug: str
    org_id: int
    marker: str  # appears in every record name of this organization (and its slug), never in the other's
    members: dict = field(default_factory=dict)  # role -> {"actor", "token", "email"}
    browsers: dict = field(default_factory=dict)  # role -> logged-in TestClient
    revoked_token: str = ""
    ended_browser: TestClient | None = None  # its session was logged out server-side

    def headers(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.members[role]['token']}"}

    @property
    def owner(self):
        return self.members["owner"]["actor"]


@dataclass
class Call:
    """What a body builder may use: the world, the side called, the filled path values, a unique number."""

    world: World
    side: Side
    ids: dict
    n: int

    @property
    def marker(self) -> str:
        return self.side.marker


class World:
    """A runtime, an app and two organizations; builds records through the services."""

    def __init__(self, settings: Settings, clock: FrozenClock) -> None:
        from blametrail.app import create_app
        from blametrail.runtime import build_runtime

        self.settings, self.clock = settings, clock
        self.rt = build_runtime(settings, clock=clock, migrate=False, immediate=True, queue_url="memory://")
        self.app = create_app(settings, runtime=self.rt, background=False)
        self.api = TestClient(self.app)
        self._seq = itertools.count(1)
        self._updates: dict[int, int] = {}
        self._filled: dict[tuple, dict] = {}
        self.opened: list[TestClient] = [self.api]
        self.anonymous = self.browser()
        self.a = self.side("alpha")
        self.b = self.side("bravo")
        self._notion = None
        self.notion(self.a)  # why: set up before any test snapshots rows, so preparing a call never changes one

    def close(self) -> None:
        for c in self.opened:
            c.close()
        if self._notion is not None:
            self._notion.close()
        if getattr(self, "_github", None) is not None:
            self._github.close()
        self.rt.close()

    def n(self) -> int:
        return next(self._seq)

    def now(self):
        return self.clock.now()

    def browser(self) -> TestClient:
        c = TestClient(self.app, headers=HTML)
        self.opened.append(c)
        assert c.get("/login").status_code == 200  # receives the csrftoken cookie
        return c

    def login(self, email: str) -> TestClient:
        c = self.browser()
        r = c.post("/login", data={"email": email, "password": PASSWORD, "csrftoken": c.cookies["csrftoken"]},
                   follow_redirects=False)
        assert r.status_code == 303 and c.cookies.get(SESSION_COOKIE), r.text
        return c

    def side(self, name: str) -> Side:
        marker = f"{name}{secrets.token_hex(3)}"
        with db.transaction(self.rt.factory) as s:
            org = orgs.create_org(session=s, slug=marker, name=marker.title(), plan="pro", now=self.now())
            org.ai_enabled = True
            side = Side(slug=marker, org_id=org.id, marker=marker)
            for role in ROLES:
                # why: hashed at the suite's cheap argon2 cost (tests/conftest.py), like every account in the tests
                m = orgs.create_user(session=s, email=f"{role}@{marker}.test", org=org, role=role, password=PASSWORD,
                                     now=self.now())
                _, raw = orgs.create_token(session=s, membership=m, name=f"{marker} {role}", now=self.now())
                side.members[role] = {"actor": orgs.actor_for(m), "token": raw, "email": m.user.email}
                if role == "owner":  # the owner's second token, revoked: only the revocation stops it
                    token, side.revoked_token = orgs.create_token(session=s, membership=m, name=f"{marker} revoked",
                                                                  now=self.now())
            orgs.revoke_token(session=s, org_id=org.id, token_id=token.id, now=self.now())
        side.browsers = {role: self.login(side.members[role]["email"]) for role in ROLES}
        ended = self.login(side.members["owner"]["email"])
        cookie = ended.cookies[SESSION_COOKIE]
        assert ended.post("/logout", data={"csrftoken": ended.cookies["csrftoken"]},
                          follow_redirects=False).status_code == 303
        side.ended_browser = self.browser()
        side.ended_browser.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
        return side

    # --- records -----------------------------------------------------------------------------------------------

    def incident(self, side: Side, state: str = "drafted") -> int:
        """An incident of the side: open, resolved without a postmortem, resolved with its draft ready, published, or
        published with its customer-facing text made (customer)."""
        n = self.n()
        with db.transaction(self.rt.factory) as s:
            inc = incidents.create(session=s, actor=side.owner, now=self.now(), data=IncidentCreate(
                title=f"{side.marker} incident {n}", services=["checkout"], severity="SEV-2",
                description=f"{side.marker} description {n}"))
            entry = incidents.add_update(session=s, actor=side.owner, incident=inc, now=self.now(),
                                         data=UpdateCreate(body=f"{side.marker} rolled back {n}"))
            self._updates[inc.id] = entry.id
            if state == "resolved":
                incidents.resolve(session=s, incident=inc, now=self.now(), resolved_at=None, by_label="t",
                                  by_user_id=None)  # no resolve hook: no postmortem
            elif state in ("drafted", "published", "customer", "review"):
                postmortems.resolve_incident(session=s, incident=inc, now=self.now(), resolved_at=None,
                                             by_label=side.owner.label, by_user_id=side.owner.user_id)
            else:
                assert state == "open", state
            incident_id = inc.id
        with db.transaction(self.rt.factory) as s:  # why: the suites draft far more than one plan's monthly quota
            s.execute(delete(MonthlyUsage))
        if state in ("drafted", "published", "customer", "review"):
            assert self.postmortem(incident_id)[0] is not None, "the in-process queue should have drafted it"
        if state == "review":  # review optional, and every writer of the organization asked to review it
            with db.transaction(self.rt.factory) as s:
                s.execute(update(Organization).where(Organization.id == side.owner.org_id)
                          .values(review_mode="optional"))
            with db.transaction(self.rt.factory) as s:
                pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id))
                reviews.request_review(session=s, actor=side.owner, pm=pm, now=self.now(), reviewer_ids=[
                    side.members[r]["actor"].user_id for r in ("owner", "admin", "member")])
        if state in ("published", "customer"):
            with db.transaction(self.rt.factory) as s:
                postmortems.publish(session=s, actor=side.owner, incident_id=incident_id, now=self.now())
        if state == "customer":  # published, its customer text made, and the organization allows public ones
            with db.transaction(self.rt.factory) as s:
                customer.make(session=s, actor=side.owner, incident_id=incident_id, now=self.now())
                s.execute(update(Organization).where(Organization.id == side.owner.org_id)
                          .values(public_postmortems=True))
        return incident_id

    def outbound_endpoint(self, side: Side) -> int:
        """An outbound webhook endpoint of the side (a closed port: nothing is ever received)."""
        with db.transaction(self.rt.factory) as s:
            row, _ = outbound.create(session=s, actor=side.owner, url="http://127.0.0.1:9/hook",
                                     description=f"{side.marker} endpoint {self.n()}", events=["incident.opened"],
                                     box=self.rt.secret_box, policy=netguard.policy_from(self.rt.settings),
                                     now=self.now())
            return row.id

    def outbound_delivery(self, endpoint_id: int) -> int:
        """A delivery of that endpoint (a ping recorded, not sent)."""
        with db.transaction(self.rt.factory) as s:
            row = s.get(OutboundEndpoint, endpoint_id)
            actor = next(m["actor"] for side in (self.a, self.b) for m in [side.members["owner"]]
                         if side.org_id == row.org_id)
            return outbound.ping(session=s, actor=actor, row=row, now=self.now()).id

    def comment(self, side: Side) -> int:
        """A comment on a section of a drafted postmortem of the side."""
        incident_id = self.incident(side, "drafted")
        with db.transaction(self.rt.factory) as s:
            pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id))
            return reviews.add_comment(session=s, actor=side.owner, pm=pm, section="summary", now=self.now(),
                                       body=f"{side.marker} comment {self.n()}", parent_id=None).id

    def postmortem(self, incident_id: int) -> tuple[dict | None, int]:
        with db.transaction(self.rt.factory) as s:
            pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id))
            return pm.sections, pm.version

    def revision_number(self, incident_id: int) -> int:
        with db.transaction(self.rt.factory) as s:
            pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id))
            return postmortems.list_revisions(session=s, pm=pm)[0].number

    def evidence_id(self, incident_id: int) -> str:
        return f"upd_{self._updates[incident_id]}"

    def deploy(self, side: Side) -> int:
        n = self.n()
        with db.transaction(self.rt.factory) as s:
            d, _ = deploys.create_or_get(session=s, actor=side.owner, now=self.now(), data=DeployCreate(
                service="checkout", version=f"{side.marker}-v{n}", deployed_at=self.now(),
                commits=[CommitIn(sha="abcdef12", message=f"{side.marker} change {n}")]))
            return d.id

    def action_item(self, side: Side) -> int:
        """An open action item of the side, on an open incident of its own."""
        from blametrail.actions import service as action_items
        from blametrail.actions.schemas import ActionItemCreate

        incident_id = self.incident(side, "open")
        with db.transaction(self.rt.factory) as s:
            return action_items.create(session=s, actor=side.owner, incident_id=incident_id, now=self.now(),
                                       data=ActionItemCreate(title=f"{side.marker} action item {self.n()}")).id

    def monitor(self, side: Side) -> int:
        with db.transaction(self.rt.factory) as s:
            return monitors.create(session=s, actor=side.owner, now=self.now(), data=MonitorCreate(
                name=f"{side.marker} monitor {self.n()}", url="http://127.0.0.1:9/health")).id

    def webhook(self, side: Side, kind: str = "alertmanager") -> dict:
        with db.transaction(self.rt.factory) as s:
            hook, secret = webhooks.create(session=s, actor=side.owner, box=self.rt.secret_box, kind=kind,
                                           name=f"{side.marker} {kind} {self.n()}", now=self.now(),
                                           default_service="checkout")
            made = {"id": hook.id, "uid": hook.uid, "secret": secret, "kind": kind}
        return made

    def connection(self, side: Side) -> int:
        with db.transaction(self.rt.factory) as s:
            return connections.create(session=s, actor=side.owner, box=self.rt.secret_box, now=self.now(),
                                      allow_fake=True, data=ConnectionCreate(
                                          name=f"{side.marker} connection {self.n()}", provider="fake",
                                          credentials={"token": "t0ken"})).id

    def member(self, side: Side, role: str = "member") -> int:
        with db.transaction(self.rt.factory) as s:
            org = orgs.get_org(session=s, org_id=side.org_id)
            return orgs.create_user(session=s, email=f"extra{self.n()}@{side.marker}.test", org=org, role=role,
                                    password=None, now=self.now()).user_id

    def invitation(self, side: Side, email: str | None = None) -> tuple[int, str]:
        """A pending invitation of the side (to a new address unless given): its id and its link's raw token."""
        with db.transaction(self.rt.factory) as s:
            inv, raw, _ = invitations.invite(session=s, actor=side.owner, email=email or f"new{self.n()}@x.test",
                                             role="member", name="", now=self.now(), ttl=timedelta(days=7))
            return inv.id, raw

    def inviting_org(self, side: Side) -> int:
        """A new organization that has invited every member of the side; its id."""
        marker = f"{side.marker}-inviter{self.n()}"
        with db.transaction(self.rt.factory) as s:
            org = orgs.create_org(session=s, slug=marker, name=marker, plan="pro", now=self.now())
            m = orgs.create_user(session=s, email=f"owner@{marker}.test", org=org, role="owner", password=None,
                                 now=self.now())
            for member in side.members.values():
                invitations.invite(session=s, actor=orgs.actor_for(m), email=member["email"], role="viewer", name="",
                                   now=self.now(), ttl=timedelta(days=7))
            return org.id

    def token(self, side: Side) -> int:
        """A token of another member of the side (so revoking it needs MANAGE)."""
        user_id = self.member(side)
        with db.transaction(self.rt.factory) as s:
            m = orgs.get_membership_by_user(session=s, org_id=side.org_id, user_id=user_id)
            return orgs.create_token(session=s, membership=m, name=f"{side.marker} token {self.n()}",
                                     now=self.now())[0].id

    def forget(self) -> None:
        """Make every later fill build new records."""
        self._filled.clear()

    def fill(self, route: Route, side: Side, fresh: bool = False) -> dict:
        """Return a record of the side for each path parameter of the route: new ones, or those made before."""
        key = (side.slug, tuple(route.params), spec_of(route).incident)
        if fresh or key not in self._filled:
            ids: dict = {}
            for name in route.params:
                ids[name] = PARAMS[name].make(self, side, route, spec_of(route), ids)
            self._filled[key] = ids
        return dict(self._filled[key])

    # --- calling ----------------------------------------------------------------------------------------------

    def notion(self, side: Side) -> None:
        """Set Notion up for the organization, pointing at a local Notion server this world starts once."""
        if self._notion is None:
            from tests.vendors.wiki_servers import NotionServer

            self._notion = NotionServer()
        with db.transaction(self.rt.factory) as s:
            for each in (self.a, self.b):  # why: both at once, so preparing B's call never shows as a changed row
                if vendors.find(session=s, org_id=each.owner.org_id, kind="notion") is None:
                    vendors.configure(session=s, actor=each.owner, kind="notion", box=self.rt.secret_box,
                                      now=self.now(), data={"token": "secret_good", "base_url": self._notion.root,
                                                            "parent_page_id": self._notion.parent_id})

    def github(self, side: Side) -> None:
        """Set GitHub Issues up for both organizations, pointing at a local GitHub server this world starts once."""
        if getattr(self, "_github", None) is None:
            from tests.vendors.tracker_servers import GitHubServer

            self._github = GitHubServer()
        with db.transaction(self.rt.factory) as s:
            for each in (self.a, self.b):  # why: both at once, so preparing B's call never shows as a changed row
                if vendors.find(session=s, org_id=each.owner.org_id, kind="github_issues") is None:
                    n = 1 if each is self.a else 2  # why: the same secrets vendor() hands the signed calls
                    data = {**VENDOR_SETTINGS["github_issues"](n), "token": "ghp_good", "base_url": self._github.url}
                    vendors.configure(session=s, actor=each.owner, kind="github_issues", box=self.rt.secret_box,
                                      now=self.now(), data=data)

    def customer_token(self, side: Side) -> str:
        """The public address token of a customer-facing text made public."""
        incident_id = self.incident(side, "customer")
        with db.transaction(self.rt.factory) as s:
            return customer.publish(session=s, actor=side.owner, incident_id=incident_id, now=self.now()).public_token

    def vendor(self, side: Side, kind: str = "slack") -> dict:
        """Set a vendor up for the organization once; return {uid, settings} (a closed port: never a real call)."""
        n = 1 if side is self.a else 2
        settings = VENDOR_SETTINGS[kind](n)
        with db.transaction(self.rt.factory) as s:
            row = vendors.find(session=s, org_id=side.owner.org_id, kind=kind)
            if row is None:  # why: refused calls are checked for changed rows; setting it up again would change some
                row = vendors.configure(session=s, actor=side.owner, kind=kind, box=self.rt.secret_box,
                                        now=self.now(), data=settings)
            return {"uid": row.inbound_uid, "settings": settings}

    def ai_config(self, side: Side) -> None:
        """Give the organization an AI configuration of its own (the built-in engine)."""
        with db.transaction(self.rt.factory) as s:
            ai.put(session=s, actor=side.owner, box=self.rt.secret_box, now=self.now(), engine="builtin", model=None,
                   base_url=None, api_key=None, output_mode=None, options={})

    def body(self, route: Route, side: Side, ids: dict) -> dict | None:
        """Prepare the organization for the route, and return the body a permitted caller sends."""
        spec = spec_of(route)
        if spec.prepare:
            spec.prepare(self, side)
        return spec.body(Call(self, side, ids, self.n())) if spec.body else None

    def call(self, route: Route, who: str, side: Side, ids: dict, body: dict | None = None):
        """Call the route as `who` of `side`: a role, "anonymous", or "revoked" (revoked token / ended session)."""
        url = route.url(ids)
        if route.kind == "api":
            headers = ({} if who == "anonymous" else
                       {"Authorization": f"Bearer {side.revoked_token}"} if who == "revoked" else side.headers(who))
            return self.api.request(route.method, url, json=body, headers=headers)
        client = (self.anonymous if who == "anonymous" else side.ended_browser if who == "revoked"
                  else side.browsers[who])
        if route.method == "GET":
            return client.get(url, follow_redirects=False)
        return client.request(route.method, url, data={**(body or {}), "csrftoken": client.cookies["csrftoken"]},
                              follow_redirects=False)

    def snapshot(self) -> dict:
        """Every row of every table (token last-use times aside: reading with a token stamps them)."""
        out = {}
        with self.rt.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                cols = [c for c in table.columns if c.name != "last_used_at"]
                out[table.name] = sorted(repr(tuple(row)) for row in conn.execute(select(*cols)))
        return out


def _module_settings(tmp_path_factory, schema: dict) -> Settings:
    data = tmp_path_factory.mktemp("routes")
    if schema["kind"] == "postgresql":
        _truncate_pg(schema["url"])
        url = schema["url"]
    else:
        shutil.copy(schema["template"], data / "blametrail.db")
        url = f"sqlite:///{data / 'blametrail.db'}"
    return Settings(data_dir=data, database_url=url, dev_mode=True, embedded_workers=0, regenerate_interval_seconds=0,
                    _env_file=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory, _schema) -> Iterator[World]:
    """One world per test module (the logins cost argon2 time); records are made fresh per call that can change them."""
    w = World(_module_settings(tmp_path_factory, _schema), FrozenClock(START))
    yield w
    w.close()
