"""Read shapes shared by the JSON API and the HTML pages: one function per resource, plain dicts out (a model documents
the shape where the API declares one)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session, object_session

from blametrail.alerts.models import Alert
from blametrail.analysis import ids
from blametrail.clock import iso
from blametrail.crypto import SecretBox
from blametrail.deploys.models import Deploy
from blametrail.errors import InvalidState, NotFound
from blametrail.evidence.pack import build_pack
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.integrations import service as connections
from blametrail.integrations.common import public_error
from blametrail.integrations.models import Connection
from blametrail.monitors.models import CheckResult, Monitor
from blametrail.netguard import redact_userinfo
from blametrail.orgs import templates
from blametrail.orgs.models import ApiToken, Invitation, Membership, Organization
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.export import to_markdown, version_note
from blametrail.postmortems.models import GenerationRun, Postmortem, Revision
from blametrail.runtime import Runtime
from blametrail.settings import Settings
from blametrail.summaries import service as summaries
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.models import Webhook, WebhookDelivery

# --- integrations: connections, webhooks, monitors -------------------------------------------------------------


def connection_read(connection: Connection, box: SecretBox, *, details: bool = True) -> dict:
    """Return the read shape of a connection: everything but the credentials; `details` for owners and admins only.

    Credentials written into a URL before they were refused never show; without `details`, the last test's error
    is only its kind and HTTP status (`public_error`).
    """
    options = dict(connection.options or {})
    if isinstance(options.get("endpoint_url"), str):
        options["endpoint_url"] = redact_userinfo(options["endpoint_url"])
    error = connection.last_test_error if details else public_error(connection.last_test_error)
    return {
        "id": connection.id, "name": connection.name, "provider": connection.provider,
        "endpoint": redact_userinfo(connection.endpoint),
        "has_credentials": bool(connection.credentials_encrypted),
        "credential_keys": connections.credential_keys(connection, box),
        "signals": [{"unit": "", **s} for s in connection.signals or []], "options": options,
        "enabled": connection.enabled, "last_test_at": connection.last_test_at, "last_test_ok": connection.last_test_ok,
        "last_test_error": error, "created_at": connection.created_at, "updated_at": connection.updated_at,
    }


def public_base(request: Request, settings: Settings) -> tuple[str, str | None]:
    """Return the base URL for links senders use, and a warning when the configured one differs from this request."""
    seen = str(request.base_url).rstrip("/")
    # why: the setting has a default (127.0.0.1:8000); only one set on purpose outranks what the browser used
    if "public_url" not in settings.model_fields_set:
        return seen, None
    configured = settings.public_url.rstrip("/")
    if configured.lower() == seen.lower():
        return configured, None
    return configured, (f"These URLs use BLAMETRAIL_PUBLIC_URL ({configured}), but this page was reached at {seen}. "
                        "Senders must be able to reach the first address.")


def webhook_read(hook: Webhook, public_url: str, last_delivery_at: datetime | None = None) -> dict:
    """Return the read shape of a webhook (never its secret)."""
    return {"id": hook.id, "kind": hook.kind, "name": hook.name, "url": webhooks.url_for(hook, public_url),
            "secret_prefix": hook.secret_prefix, "default_service": hook.default_service,
            "default_severity": hook.default_severity, "environment": hook.environment,
            "open_incidents": hook.open_incidents, "auto_resolve": hook.auto_resolve,
            "active": hook.disabled_at is None, "created_at": iso(hook.created_at), "disabled_at": iso(hook.disabled_at),
            "last_delivery_at": iso(last_delivery_at)}


def delivery_read(delivery: WebhookDelivery) -> dict:
    """Return the read shape of an accepted webhook delivery."""
    return {"id": delivery.id, "delivery_key": delivery.delivery_key, "received_at": iso(delivery.received_at),
            "event": delivery.event, "items": delivery.items, "summary": delivery.summary}


def monitor_read(monitor: Monitor) -> dict:
    """Return the read shape of a monitor; credentials in a URL stored before they were refused never show."""
    return {f: getattr(monitor, f) for f in (
        "id", "name", "url", "method", "expected_statuses", "keyword", "timeout_seconds", "interval_seconds",
        "failure_threshold", "recovery_threshold", "service", "severity", "enabled", "state", "consecutive_failures",
        "consecutive_successes", "first_failure_at", "incident_id", "last_checked_at", "last_ok", "last_error",
        "next_check_at", "created_at", "updated_at")} | {"url": redact_userinfo(monitor.url)}


def check_read(result: CheckResult) -> dict:
    """Return the read shape of a monitor's check result."""
    return {f: getattr(result, f) for f in (
        "id", "monitor_id", "checked_at", "ok", "status_code", "latency_ms", "error_kind", "error")}


# --- incidents ------------------------------------------------------------------------------------------------


def _incident_shape(incident: Incident, postmortem_status: str | None) -> dict:
    return {
        "id": incident.id, "title": incident.title, "description": incident.description, "severity": incident.severity,
        "status": incident.status, "services": incident.service_names, "started_at": incident.started_at,
        "resolved_at": incident.resolved_at, "resolved_by": incident.resolved_by, "created_at": incident.created_at,
        "updated_at": incident.updated_at, "duration_minutes": incidents.duration_minutes(incident),
        "postmortem_status": postmortem_status, "postmortem_skip_reason": incident.postmortem_skip_reason,
    }


def incident_reads(session: Session, rows: list[Incident]) -> list[dict]:
    """Return the read shapes of a page of incidents, with their postmortem statuses read in one query."""
    if not rows:
        return []
    found = postmortems.statuses(session=session, org_id=rows[0].org_id, incident_ids=[i.id for i in rows])
    return [_incident_shape(i, found.get(i.id)) for i in rows]


def incident_read(session: Session, incident: Incident) -> dict:
    """Return the read shape of an incident."""
    return incident_reads(session, [incident])[0]


# --- postmortems ----------------------------------------------------------------------------------------------


class EditedAfterPublish(BaseModel):
    """Who last changed a published postmortem's text since its last published version, and when."""

    by: str | None
    at: str


class PostmortemRead(BaseModel):
    """The postmortem as the API returns it (timestamps are UTC ISO-8601 strings with a Z)."""

    id: int
    incident_id: int
    status: str
    version: int
    engine: str | None
    error: str | None
    sections: dict | None
    edited_sections: list[str]
    created_at: str | None
    generated_at: str | None
    published_at: str | None
    published_by: str | None
    updated_at: str | None
    published_version: int | None  # the latest published version's number; None before the first publish
    edited_after_publish: EditedAfterPublish | None  # set while the text differs from that version


class PublishedRead(BaseModel):
    """One published version: the text as it was approved (GET …/postmortem/published)."""

    version: int
    latest_version: int
    revision: int
    published_at: str | None
    published_by: str | None
    sections: dict


def _publication(pm: Postmortem) -> postmortems.Publication:
    # why: every read shape of a postmortem says where it stands against its published versions, and every caller
    # presents a postmortem it just loaded; its own session is the one to ask
    session = object_session(pm)
    if session is None:
        raise RuntimeError("present a postmortem while its session is open")
    return postmortems.publication(session=session, pm=pm)


def postmortem_read(pm: Postmortem) -> dict:
    """Return the read shape of a postmortem, with its published version and any edit made since."""
    pub = _publication(pm)
    edited = {"by": pub.edited_by, "at": iso(pub.edited_at)} if pub.edited_after_publish else None
    return {
        "id": pm.id, "incident_id": pm.incident_id, "status": pm.status, "version": pm.version,
        "engine": pm.engine, "error": pm.error, "sections": pm.sections, "edited_sections": list(pm.edited_keys or []),
        "created_at": iso(pm.created_at), "generated_at": iso(pm.generated_at), "published_at": iso(pm.published_at),
        "published_by": pm.published_by, "updated_at": iso(pm.updated_at),
        "published_version": pub.latest.version if pub.latest else None, "edited_after_publish": edited,
    }


def published_read(published: postmortems.PublishedVersion) -> dict:
    """Return the read shape of one published version."""
    rev = published.revision
    return {"version": published.version, "latest_version": published.latest, "revision": rev.number,
            "published_at": iso(rev.created_at), "published_by": rev.author, "sections": rev.sections}


def version_label(pm: dict) -> str | None:
    """Say which version a postmortem read (postmortem_read) carries: the export's and print page's sentence."""
    edited = pm.get("edited_after_publish")
    return version_note(published_version=pm.get("published_version"), published_at=pm.get("published_at"),
                        published_by=pm.get("published_by"), edited_at=edited["at"] if edited else None,
                        edited_by=edited["by"] if edited else None)


def published_label(published: dict) -> str:
    """Say which published version a published read (published_read) is."""
    return version_note(published_version=published["version"], published_at=published["published_at"],
                        published_by=published["published_by"]) or ""


def original_read(pm: Postmortem) -> dict:
    """Return the first machine draft as it was produced, or raise NotFound before there is one."""
    if pm.original_sections is None:
        raise NotFound("No AI draft has been produced yet.")
    return {"engine": pm.engine, "generated_at": iso(pm.generated_at), "sections": pm.original_sections}


def revision_read(revision: Revision) -> dict:
    """Return the read shape of a revision (without its sections)."""
    return {"number": revision.number, "status": revision.status, "author": revision.author, "kind": revision.kind,
            "engine": revision.engine, "created_at": iso(revision.created_at)}


def run_read(run: GenerationRun, *, audit: bool) -> dict:
    """Return the read shape of a generation run; `audit` (owners and admins) adds the prompt and raw response."""
    return {"id": run.id, "attempt": run.attempt, "engine": run.engine, "status": run.status,
            "started_at": iso(run.started_at), "finished_at": iso(run.finished_at), "duration_ms": run.duration_ms,
            "error": run.error, "worker": run.worker, "evidence": run.evidence, "prompt_version": run.prompt_version,
            "tokens_in": run.tokens_in, "tokens_out": run.tokens_out, "model_latency_ms": run.model_latency_ms,
            **({"prompt": run.prompt, "response_raw": run.response_raw} if audit else {})}


def postmortem_markdown(incident: Incident, pm: Postmortem) -> str:
    """Render the postmortem's current text as Markdown, saying which published version it carries."""
    pub = _publication(pm)
    return to_markdown(title=incident.title, incident_id=incident.id, status=pm.status, sections=pm.sections,
                       engine=pm.engine, published_at=iso(pm.published_at), generated_at=iso(pm.generated_at),
                       published_version=pub.latest.version if pub.latest else None, published_by=pm.published_by,
                       edited_at=iso(pub.edited_at), edited_by=pub.edited_by,
                       layout=templates.section_layout(object_session(pm), pm.org_id))


def markdown_download(incident: Incident, pm: Postmortem) -> Response:
    """Return the postmortem as a Markdown download, or raise InvalidState before the first draft."""
    if pm.sections is None:
        raise InvalidState("The postmortem has no draft yet; nothing to export.")
    return Response(postmortem_markdown(incident, pm), media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="postmortem-{incident.id}.md"'})


# --- the live incident summary --------------------------------------------------------------------------------


class SummaryRead(BaseModel):
    """The live summary as the API returns it."""

    status: str  # queued | building | ready | failed | none
    generated_at: datetime | None
    engine: str | None
    content: summaries.SummaryOut | None
    error: str | None = None


def summary_read(*, session: Session, incident: Incident, rt: Runtime, now: datetime) -> dict:
    """Return the stored summary, or (before the first refresh) the built-in one computed now without storing it."""
    row = summaries.find(session=session, incident_id=incident.id)
    if row is not None and row.content is not None:
        return summaries.to_read(row)
    pack = build_pack(session=session, incident=incident, lookback_minutes=rt.settings.lookback_minutes, now=now)
    live = summaries.to_read(None, fallback=summaries.write_summary(pack))
    if row is not None:
        live["status"] = row.status
    return live


# --- the organization and its people --------------------------------------------------------------------------


def org_settings_read(org: Organization) -> dict:
    """Return the read shape of the organization's settings."""
    return {"slug": org.slug, "name": org.name, "plan": org.plan, "ai_enabled": org.ai_enabled,
            "public_postmortems": org.public_postmortems, "review_mode": org.review_mode}


def usage_read(usage: dict) -> dict:
    """Return the read shape of this month's postmortem usage."""
    return {"plan": usage["plan"], "month": usage["month"], "used": usage["used"], "limit": usage["limit"],
            "resets_at": iso(usage["resets_at"])}


def member_read(membership: Membership) -> dict:
    """Return the read shape of a member."""
    return {"user_id": membership.user_id, "email": membership.user.email, "name": membership.user.name,
            "role": membership.role, "joined_at": iso(membership.created_at)}


def token_read(token: ApiToken) -> dict:
    """Return the read shape of an API token (never its value)."""
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "created_at": iso(token.created_at),
            "last_used_at": iso(token.last_used_at), "revoked_at": iso(token.revoked_at)}


def invitation_read(invitation: Invitation, *, now: datetime, link: str | None = None,
                    existing_account: bool | None = None) -> dict:
    """Return the read shape of an invitation; `link` (shown once, when created) adds the invite URL."""
    out = {"id": invitation.id, "email": invitation.email, "role": invitation.role, "name": invitation.name,
           "invited_by": invitation.invited_by, "created_at": iso(invitation.created_at),
           "expires_at": iso(invitation.expires_at), "status": "pending" if invitation.expires_at > now else "expired"}
    if link is not None:
        out |= {"invite_url": link, "existing_account": existing_account}
    return out


def invite_link(public_url: str, raw: str) -> str:
    """Return the one-time link an invitee opens (shown once; only the token's hash is stored)."""
    return f"{public_url.rstrip('/')}/invite/{raw}"


# --- deploys and alerts ------------------------------------------------------------------------------------------


def deploy_read(deploy: Deploy) -> dict:
    """Return the API shape of a deploy with its commits (each with its evidence id)."""
    return {
        "id": deploy.id, "evidence_id": ids.deploy_id(deploy.id), "service": deploy.service,
        "environment": deploy.environment, "version": deploy.version, "deployed_at": deploy.deployed_at,
        "created_at": deploy.created_at, "source": deploy.source, "external_id": deploy.external_id,
        "url": deploy.url,
        "commits": [{"evidence_id": ids.commit_id(c.id), "sha": c.sha, "author": c.author, "message": c.message,
                     "files": c.files, "committed_at": c.committed_at} for c in deploy.commits],
    }


def alert_read(row: Alert) -> dict:
    """Return the API shape of an alert."""
    return {"id": row.id, "webhook_id": row.webhook_id, "fingerprint": row.fingerprint, "status": row.status,
            "name": row.name, "service": row.service, "severity": row.severity, "summary": row.summary,
            "labels": row.labels, "annotations": row.annotations, "url": row.generator_url,
            "starts_at": iso(row.starts_at), "ends_at": iso(row.ends_at), "incident_id": row.incident_id,
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}
