"""Slack's calls to us: the Events API and the `/blametrail` slash command, each verified as Slack signs it.

Slack signs every request with the app's signing secret: `X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:<X-Slack-Request-Timestamp>:<raw body>">`; requests older than five minutes are refused (replays). Verification is
the official slack_sdk's `SignatureVerifier`, on our clock. The URL names the organization's Slack integration by its
unguessable `inbound_uid`; a signature made with another organization's secret is a 401 and stores nothing.

Events: `url_verification` answers the challenge; an `event_callback` is handled once per `event_id` (Slack retries
with `X-Slack-Retry-Num`; a retry or replay is acknowledged and not repeated). A message in a channel linked to an
incident queues that channel's import (new, edited and deleted messages are followed by the import).

Slash command: `/blametrail update <text>` posts an update to the channel's incident, `/blametrail resolve` resolves
it (and the postmortem is drafted), `/blametrail` or `help` says what it can do. Answers are Slack messages (JSON).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.errors import InvalidState, Unauthenticated
from blametrail.incidents.models import Incident
from blametrail.incidents.service import MAX_BODY, add_entry
from blametrail.postmortems import service as postmortems
from blametrail.vendors import service as vendors
from blametrail.vendors import slack_channel
from blametrail.vendors.models import VendorIntegration
from blametrail.web import presenters
from blametrail.web.deps import NowDep, RuntimeDep, SessionDep
from blametrail.web.receivers_common import BadRequest, capped_body, json_body

router = APIRouter(prefix="/inbound/slack", tags=["integrations"])
BodyDep = Annotated[bytes, Depends(capped_body)]
HELP = ("Use `/blametrail update <what happened>` to add an update to this channel's incident, or "
        "`/blametrail resolve` to resolve it (the postmortem is then drafted).")


class _Clock:
    """slack_sdk's verifier asks a clock for the time; ours is the app's (frozen in the tests)."""

    def __init__(self, now: datetime) -> None:
        self._now = now.timestamp()

    def now(self) -> float:
        return self._now


def _verified(*, session: Session, rt, uid: str, body: bytes, request: Request, now: datetime) -> VendorIntegration:
    """Return the integration the URL names once Slack's signature checks out; raise 401 otherwise."""
    row = vendors.by_inbound(session=session, kind="slack", uid=uid)
    if row is None:
        raise Unauthenticated("Unknown Slack URL: copy it again from the Slack integration's page.")
    try:
        secret = vendors.secrets_of(row, rt.secret_box).get("signing_secret")
    except ValueError:
        secret = None
    if not secret:
        raise Unauthenticated("The Slack integration has no signing secret that can be read: enter it again.")
    timestamp = request.headers.get("x-slack-request-timestamp") or ""
    signature = request.headers.get("x-slack-signature") or ""
    if not timestamp or not signature:
        raise Unauthenticated("Missing X-Slack-Signature or X-Slack-Request-Timestamp: not a signed Slack request.")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthenticated("X-Slack-Request-Timestamp is not a Unix time.")
    if abs(now.timestamp() - int(timestamp)) > 60 * 5:
        raise Unauthenticated("The request is more than five minutes old or ahead (a replay, or a clock far off).")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unauthenticated("The body is not UTF-8, so it cannot carry a Slack signature.") from exc
    verifier = SignatureVerifier(secret, clock=_Clock(now))
    if not verifier.is_valid(body, timestamp, signature):
        raise Unauthenticated("X-Slack-Signature does not match: check the signing secret.")
    return row


@router.post("/{inbound_uid}/events")
def events(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep, now: NowDep):
    """Slack's Events API: the URL check, then events once each."""
    row = _verified(session=session, rt=rt, uid=inbound_uid, body=body, request=request, now=now)
    payload = json_body(body, content_type=request.headers.get("content-type"))
    if not isinstance(payload, dict):
        raise BadRequest("Slack events are JSON objects.")
    kind = payload.get("type")
    if kind == "url_verification":
        return {"challenge": str(payload.get("challenge") or "")}
    if kind != "event_callback":
        return {"ok": True, "ignored": str(kind)[:60]}
    event_id = str(payload.get("event_id") or "")
    if not event_id:
        raise BadRequest("An event_callback without an event_id.")
    if not vendors.first_time(session=session, org_id=row.org_id, kind="slack", event_id=event_id, now=now):
        return {"ok": True, "duplicate": True}
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    if event.get("type") != "message":
        return {"ok": True, "ignored": str(event.get("type"))[:60]}
    channel = str(event.get("channel") or "")
    incident = slack_channel.incident_for_channel(session=session, org_id=row.org_id, channel=channel)
    if incident is None:
        return {"ok": True, "ignored": "channel not linked to an incident"}
    link = slack_channel.linked_channel(session=session, incident=incident)
    if (link.data or {}).get("status") != "queued":  # why: one import waiting is enough; it reads the whole channel
        link.data = {**(link.data or {}), "status": "queued"}
        db.defer(session, slack_channel.IMPORT_TASK, incident.id)
    return {"ok": True, "queued": "import", "incident_id": incident.id}


def _reply(text: str, *, visible: bool = False) -> JSONResponse:
    return JSONResponse({"response_type": "in_channel" if visible else "ephemeral", "text": text})


@router.post("/{inbound_uid}/commands")
def commands(inbound_uid: str, request: Request, body: BodyDep, session: SessionDep, rt: RuntimeDep, now: NowDep):
    """The `/blametrail` slash command: update, resolve, help."""
    row = _verified(session=session, rt=rt, uid=inbound_uid, body=body, request=request, now=now)
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
    except UnicodeDecodeError as exc:
        raise BadRequest("A slash command is a form-encoded body.") from exc
    text = (form.get("text") or "").strip()
    verb, _, rest = text.partition(" ")
    verb = verb.lower()
    if verb in ("", "help"):
        return _reply(HELP)
    channel, who = form.get("channel_id") or "", (form.get("user_name") or form.get("user_id") or "someone")[:80]
    incident = slack_channel.incident_for_channel(session=session, org_id=row.org_id, channel=channel)
    if incident is None:
        return _reply("This channel is not linked to an incident. Link it from the incident's page in BlameTrail "
                      "(Slack channel), then try again.")
    base, _ = presenters.public_base(request, rt.settings)
    url = f"{base}/incidents/{incident.id}"
    if verb == "update":
        rest = rest.strip()
        if not rest:
            return _reply("Say what happened: `/blametrail update Rolled back checkout to v2.2`.")
        if len(rest) > MAX_BODY:
            return _reply(f"That update is {len(rest):,} characters; updates hold at most {MAX_BODY:,}.")
        add_entry(session=session, incident=incident, kind="update", at=now, body=rest, now=now,
                  author=f"{who} (Slack)", data={"source": "slack", "channel": channel, "command": True})
        return _reply(f"Update added to incident #{incident.id} ({incident.title}) by {who}: {url}", visible=True)
    if verb == "resolve":
        try:
            _resolve(session=session, incident=incident, who=who, now=now)
        except InvalidState as exc:
            db.rollback(session)
            return _reply(exc.detail)
        return _reply(f"Incident #{incident.id} ({incident.title}) resolved by {who}. The postmortem is being drafted: "
                      f"{url}/postmortem", visible=True)
    return _reply(f"Unknown command “{verb[:40]}”. {HELP}")


def _resolve(*, session: Session, incident: Incident, who: str, now: datetime) -> None:
    postmortems.resolve_incident(session=session, incident=incident, now=now, resolved_at=None,
                                 by_label=f"{who} (Slack)", by_user_id=None)
