"""A Slack channel as incident evidence: its messages and thread replies become human updates, cited like any update.

`fetch` reads the channel through the official slack_sdk (conversations.history and conversations.replies with
cursor pagination, users.info for display names; a 429 waits as long as Retry-After asks, up to a bound). `apply`
makes the timeline follow it: a new message adds an update, an edited one changes that update's text, and a message
gone from a complete read is taken off the timeline. Each message is linked to its entry in `external_link`
(kind "slack_message", id "<channel>:<ts>"), which is what makes a re-import idempotent.
"""

from __future__ import annotations

import re
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.clock import iso
from blametrail.errors import InvalidState, UpstreamError, ValidationFailed
from blametrail.incidents import hooks
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident, TimelineEntry
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.vendors import service as vendors
from blametrail.vendors import slack
from blametrail.vendors.models import ExternalLink

CHANNEL_KIND, MESSAGE_KIND = "slack_channel", "slack_message"
IMPORT_TASK = "slack_import"
PAGE_SIZE = 200
MAX_PAGES = 50  # 10,000 messages per read: an incident channel, not an archive
MAX_WAIT_SECONDS = 30  # a 429 asking to wait longer fails the read in plain words instead of holding a worker
MAX_RETRIES = 4
# message subtypes that are people talking (others are joins, topic changes, pins…)
KEPT_SUBTYPES = {None, "", "thread_broadcast", "file_share", "bot_message", "me_message"}
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")
_CHANNEL_REF = re.compile(r"<#[CG][A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class Message:
    ts: str
    author: str
    text: str
    edited: bool
    thread_ts: str | None

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(float(self.ts), UTC)


@dataclass(frozen=True)
class Read:
    """What one read of a channel returned; `complete` is False when it stopped early (then nothing is deleted)."""

    messages: tuple[Message, ...]
    complete: bool


def valid_channel(channel_id: str) -> bool:
    """Tell whether a string looks like a Slack conversation id (C…, G… or D…)."""
    return bool(CHANNEL_ID.match(channel_id or ""))


class _Reader:
    def __init__(self, client, *, sleep: Callable[[float], None], where: str) -> None:
        self.client, self.sleep, self.where = client, sleep, where
        self.names: dict[str, str] = {}

    def call(self, method: str, **params):
        """Call a Web API method, waiting out 429s as Slack asks (bounded); raise UpstreamError in plain words."""
        from slack_sdk.errors import SlackApiError

        for attempt in range(MAX_RETRIES + 1):
            try:
                return getattr(self.client, method)(**params)
            except SlackApiError as exc:
                if exc.response.status_code == 429 and attempt < MAX_RETRIES:
                    wait = _retry_after(exc.response.headers)
                    if wait is not None and wait <= MAX_WAIT_SECONDS:
                        self.sleep(wait)
                        continue
                raise UpstreamError(slack.explain(exc, self.where)) from exc
            except (OSError, urllib.error.URLError) as exc:
                raise UpstreamError(slack.explain(exc, self.where)) from exc
        raise UpstreamError(f"Slack kept rate limiting these calls after {MAX_RETRIES} waits.")

    def name(self, user_id: str | None, fallback: str | None = None) -> str:
        """Return a user's display name (users.info, cached per read); the id itself when Slack will not say."""
        if not user_id:
            return fallback or "Slack"
        if user_id not in self.names:
            try:
                user = self.call("users_info", user=user_id).get("user") or {}
            except UpstreamError:
                user = {}
            profile = user.get("profile") or {}
            self.names[user_id] = (profile.get("display_name") or profile.get("real_name") or user.get("real_name")
                                   or user.get("name") or user_id)
        return self.names[user_id]

    def text(self, raw: str) -> str:
        """Turn Slack's markup into plain text: mentions by name, links as label (url), &amp; and friends."""
        out = _MENTION.sub(lambda m: "@" + self.name(m.group(1)), raw or "")
        out = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), out)
        out = _CHANNEL_REF.sub(lambda m: "#" + m.group(1), out)
        out = _SPECIAL.sub(lambda m: "@" + m.group(1), out)
        return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def message(self, raw: dict) -> Message | None:
        if raw.get("subtype") not in KEPT_SUBTYPES or not raw.get("ts"):
            return None
        text = self.text(raw.get("text") or "").strip()
        if not text:
            return None
        author = self.name(raw.get("user"), (raw.get("bot_profile") or {}).get("name") or raw.get("username"))
        return Message(ts=str(raw["ts"]), author=author, text=text, edited=bool(raw.get("edited")),
                       thread_ts=str(raw["thread_ts"]) if raw.get("thread_ts") else None)


def _retry_after(headers) -> float | None:
    for key in ("Retry-After", "retry-after"):
        value = (headers or {}).get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _pages(reader: _Reader, method: str, **params):
    """Yield each page's messages, following next_cursor; the second value says whether every page was read."""
    cursor = None
    for _ in range(MAX_PAGES):
        answer = reader.call(method, limit=PAGE_SIZE, **params, **({"cursor": cursor} if cursor else {}))
        yield answer.get("messages") or [], False
        cursor = ((answer.get("response_metadata") or {}).get("next_cursor") or "").strip()
        if not cursor:
            yield [], True
            return


def fetch(client, channel: str, *, oldest: datetime, where: str = "slack.com",
          sleep: Callable[[float], None] = time.sleep) -> Read:
    """Read a channel's messages since `oldest`, with every thread's replies, oldest first."""
    reader = _Reader(client, sleep=sleep, where=where)
    found: dict[str, Message] = {}
    complete = True
    threads: list[str] = []
    done = False
    for page, finished in _pages(reader, "conversations_history", channel=channel, oldest=f"{oldest.timestamp():.6f}"):
        done = done or finished
        for raw in page:
            msg = reader.message(raw)
            if msg is not None:
                found[msg.ts] = msg
            if raw.get("reply_count") and raw.get("ts"):
                threads.append(str(raw["ts"]))
    complete = complete and done
    for parent in threads:
        done = False
        for page, finished in _pages(reader, "conversations_replies", channel=channel, ts=parent):
            done = done or finished
            for raw in page:
                if str(raw.get("ts")) == parent:
                    continue  # why: a thread's first message is its parent, already read from the history
                msg = reader.message(raw)
                if msg is not None:
                    found[msg.ts] = msg
        complete = complete and done
    return Read(tuple(sorted(found.values(), key=lambda m: float(m.ts))), complete)


def _body(msg: Message) -> str:
    return f"{msg.text}" if not msg.thread_ts or msg.thread_ts == msg.ts else f"(in a thread) {msg.text}"


def apply(*, session: Session, incident: Incident, channel: str, read: Read, now: datetime) -> dict:
    """Make the incident's timeline follow the channel; return counts {added, edited, removed, unchanged}."""
    prefix = f"{channel}:"
    every = {link.external_id: link for link in session.scalars(select(ExternalLink).where(
        ExternalLink.org_id == incident.org_id, ExternalLink.kind == MESSAGE_KIND,
        ExternalLink.external_id.startswith(prefix, autoescape=True)))}
    # why: a channel used again for a later incident keeps the messages already cited by the earlier one there
    foreign = {key for key, link in every.items() if link.incident_id != incident.id}
    links = {key: link for key, link in every.items() if key not in foreign}
    entries = {e.id: e for e in session.scalars(select(TimelineEntry).where(
        TimelineEntry.id.in_([lk.entry_id for lk in links.values() if lk.entry_id]),
        TimelineEntry.incident_id == incident.id))} if links else {}
    counts = {"added": 0, "edited": 0, "removed": 0, "unchanged": 0}
    seen: set[str] = set()
    for msg in read.messages:
        key = prefix + msg.ts
        seen.add(key)
        if key in foreign:
            continue
        link = links.get(key)
        entry = entries.get(link.entry_id) if link is not None and link.entry_id else None
        data = {"source": "slack", "channel": channel, "ts": msg.ts, "edited": msg.edited}
        if entry is None:
            entry = incidents.add_entry(session=session, incident=incident, kind="update", at=msg.at,
                                        body=_body(msg), author=msg.author, data=data, now=now, flush=False)
            session.flush()  # why: the link needs the entry's id
            if link is None:
                session.add(ExternalLink(org_id=incident.org_id, kind=MESSAGE_KIND, external_id=key,
                                         incident_id=incident.id, entry_id=entry.id, data={}, created_at=now,
                                         updated_at=now))
            else:
                link.entry_id, link.updated_at = entry.id, now
            counts["added"] += 1
        elif entry.body != _body(msg) or entry.author != msg.author:
            entry.body, entry.author, entry.data = _body(msg), msg.author, data
            link.updated_at = now
            counts["edited"] += 1
        else:
            counts["unchanged"] += 1
    if read.complete:  # why: a partial read says nothing about what it did not reach
        gone = [lk for key, lk in links.items() if key not in seen]
        for link in gone:
            if link.entry_id:
                session.execute(delete(TimelineEntry).where(TimelineEntry.id == link.entry_id,
                                                            TimelineEntry.incident_id == incident.id))
            session.delete(link)
        counts["removed"] = len(gone)
    incidents.flush_entries(session=session, now=now)  # fires the evidence-changed hook for what was added
    if counts["edited"] or counts["removed"]:
        incident.updated_at = now
        hooks.evidence_changed(session, [incident], now)
    return counts


def linked_channel(*, session: Session, incident: Incident) -> ExternalLink | None:
    """Return the channel link of an incident, if it has one."""
    return session.scalar(select(ExternalLink).where(ExternalLink.org_id == incident.org_id,
                                                     ExternalLink.kind == CHANNEL_KIND,
                                                     ExternalLink.incident_id == incident.id))


def incident_for_channel(*, session: Session, org_id: int, channel: str) -> Incident | None:
    """Return the incident a channel is linked to in an organization, if any."""
    link = session.scalar(select(ExternalLink).where(ExternalLink.org_id == org_id, ExternalLink.kind == CHANNEL_KIND,
                                                     ExternalLink.external_id == channel))
    if link is None or link.incident_id is None:
        return None
    return session.get(Incident, link.incident_id)


def link(*, session: Session, actor: Actor, incident_id: int, channel: str, now: datetime) -> ExternalLink:
    """Link an incident to a Slack channel and queue the import of its messages (members and up).

    An incident has one channel; linking another replaces it (updates already imported stay). A channel linked to an
    earlier incident moves to this one.
    """
    require(actor.role, Action.WRITE_INCIDENTS)
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    channel = (channel or "").strip()
    if not valid_channel(channel):
        raise ValidationFailed("That is not a Slack channel id: copy it from the channel's details (C0123456789).",
                               [{"loc": ["channel_id"], "msg": "a Slack channel id such as C0123456789"}])
    if vendors.find(session=session, org_id=actor.org_id, kind="slack") is None:
        raise InvalidState("Slack is not set up for this organization: an owner or admin adds it under "
                           "Settings → Integrations.")
    row = session.scalar(select(ExternalLink).where(ExternalLink.org_id == actor.org_id,
                                                    ExternalLink.kind == CHANNEL_KIND,
                                                    ExternalLink.external_id == channel))
    current = linked_channel(session=session, incident=incident)
    if current is not None and current is not row:
        session.delete(current)
        session.flush()
    state = {"status": "queued", "requested_at": iso(now), "requested_by": actor.label}
    if row is None:
        row = ExternalLink(org_id=actor.org_id, kind=CHANNEL_KIND, external_id=channel, incident_id=incident.id,
                           data=state, created_at=now, updated_at=now)
        session.add(row)
    else:
        row.incident_id, row.data, row.updated_at = incident.id, state, now
    session.flush()
    db.defer(session, IMPORT_TASK, incident.id)
    return row


def link_read(row: ExternalLink | None) -> dict | None:
    """Return the API shape of an incident's channel link and its last import."""
    if row is None:
        return None
    data = row.data or {}
    return {"channel_id": row.external_id, "incident_id": row.incident_id, "status": data.get("status"),
            "imported_at": data.get("imported_at"), "counts": data.get("counts"), "error": data.get("error"),
            "complete": data.get("complete")}
