"""The Slack channel import job: read the linked channel outside any transaction, then make the timeline follow it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.clock import iso
from blametrail.crypto import SecretBox
from blametrail.errors import UpstreamError
from blametrail.incidents.models import Incident
from blametrail.netguard import OutboundPolicy, redact_userinfo
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Postmortem
from blametrail.vendors import service as vendors
from blametrail.vendors import slack, slack_channel


def _fail(factory: sessionmaker[Session], incident_id: int, message: str, now: datetime) -> str:
    with db.transaction(factory) as s:
        incident = s.get(Incident, incident_id)
        link = slack_channel.linked_channel(session=s, incident=incident) if incident else None
        if link is not None:
            link.data = {**(link.data or {}), "status": "failed", "error": message, "failed_at": iso(now)}
        row = vendors.find(session=s, org_id=incident.org_id, kind="slack") if incident else None
        if row is not None:
            vendors.record_check(row, ok=False, error=message, now=now)
    return "failed"


def run_import(*, factory: sessionmaker[Session], incident_id: int, box: SecretBox, policy: OutboundPolicy,
               timeout: float, lookback_minutes: int, clock: Callable[[], datetime],
               sleep: Callable[[float], None] = time.sleep) -> str:
    """Import the incident's linked channel (idempotent: a message already imported is only checked for edits)."""
    with db.transaction(factory) as s:
        incident = s.get(Incident, incident_id)
        link = slack_channel.linked_channel(session=s, incident=incident) if incident else None
        row = vendors.find(session=s, org_id=incident.org_id, kind="slack") if incident else None
        if link is None or row is None:
            return "skipped"
        try:
            config = vendors.config_of(row, box)
        except ValueError:
            config = None
        channel, oldest = link.external_id, incident.started_at - timedelta(minutes=lookback_minutes)
        link.data = {**(link.data or {}), "status": "importing"}
    if config is None:
        return _fail(factory, incident_id, "The Slack bot token cannot be opened with the configured keys: enter it "
                                           "again on the Slack integration page.", clock())
    where = redact_userinfo(urlsplit(slack.api_url(config)).netloc)
    try:
        read = slack_channel.fetch(slack.client(config, policy, timeout), channel, oldest=oldest, where=where,
                                   sleep=sleep)
    except UpstreamError as exc:
        return _fail(factory, incident_id, str(exc), clock())
    now = clock()
    with db.transaction(factory) as s:
        incident = s.get(Incident, incident_id)
        link = slack_channel.linked_channel(session=s, incident=incident) if incident else None
        if link is None or link.external_id != channel:
            return "skipped"  # why: unlinked or relinked while reading; the new link has its own import queued
        counts = slack_channel.apply(session=s, incident=incident, channel=channel, read=read, now=now)
        link.data = {**(link.data or {}), "status": "imported", "imported_at": iso(now), "counts": counts,
                     "complete": read.complete, "error": None}
        row = vendors.find(session=s, org_id=incident.org_id, kind="slack")
        if row is not None:
            vendors.record_check(row, ok=True, error=None, now=now)
    return "imported"


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def run_notice(*, factory: sessionmaker[Session], pm_id: int, event: str, box: SecretBox, policy: OutboundPolicy,
               timeout: float, public_url: str, clock: Callable[[], datetime]) -> str:
    """Post "postmortem drafted / published" to the organization's notice channel, when it has one."""
    with db.transaction(factory) as s:
        pm = s.get(Postmortem, pm_id)
        row = vendors.find(session=s, org_id=pm.org_id, kind="slack") if pm is not None else None
        channel = (row.settings or {}).get("notify_channel") if row is not None else None
        if pm is None or row is None or not channel or event not in ("drafted", "published"):
            return "skipped"
        incident = s.get(Incident, pm.incident_id)
        try:
            config = vendors.config_of(row, box)
        except ValueError:
            config = None
        version = postmortems.publication(session=s, pm=pm).latest if event == "published" else None
        link = f"{public_url.rstrip('/')}/incidents/{incident.id}/postmortem"
        what = (f"published (version {version.version}) by {_mrkdwn(pm.published_by or 'someone')}"
                if version is not None else f"drafted by {_mrkdwn(pm.engine or 'BlameTrail')}")
        text = f"Postmortem {what} for incident #{incident.id} “{_mrkdwn(incident.title)}”: <{link}|open it>"
    if config is None:
        return _notice_failed(factory, pm_id, "The Slack bot token cannot be opened with the configured keys.",
                              clock())
    where = redact_userinfo(urlsplit(slack.api_url(config)).netloc)
    try:
        slack.client(config, policy, timeout).chat_postMessage(channel=channel, text=text, unfurl_links=False)
    except (SlackApiError, OSError) as exc:
        return _notice_failed(factory, pm_id, slack.explain(exc, where), clock())
    except UpstreamError as exc:
        return _notice_failed(factory, pm_id, str(exc), clock())
    return "posted"


def _notice_failed(factory: sessionmaker[Session], pm_id: int, message: str, now: datetime) -> str:
    with db.transaction(factory) as s:
        pm = s.get(Postmortem, pm_id)
        row = vendors.find(session=s, org_id=pm.org_id, kind="slack") if pm is not None else None
        if row is not None:
            vendors.record_check(row, ok=False, error=f"The postmortem notice was not posted: {message}", now=now)
    return "failed"
