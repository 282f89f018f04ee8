"""Action items: create, list (filters, overdue), read, update, and materialize a draft's action items as records.

De-duplication (materialize): a new draft item *repeats* an OPEN or IN_PROGRESS item of another incident of the
same organization when both have the same service and their titles are similar: the Jaccard index of their
normalized word sets (lowercased, NFKC, punctuation dropped, common English stop words removed, a trailing plural
"s" dropped) is >= 0.6. The most similar such item (the oldest on a tie) becomes `duplicate_of_id`; a person then
closes the new one as a duplicate (wont_do) or keeps it separate (clears the link).

Every create and update ends with `trackers.notify` (the seam for issue 15).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blametrail.actions import trackers
from blametrail.actions.models import PRIORITIES, ActionItem
from blametrail.actions.schemas import OWNER_MAX, TITLE_MAX, ActionItemCreate, ActionItemUpdate
from blametrail.errors import NotFound, ValidationFailed
from blametrail.incidents.models import Incident
from blametrail.orgs.models import Membership, User
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.outbound import service as outbound

OPEN_STATUSES = ("open", "in_progress")
CLOSED_STATUSES = ("done", "wont_do")
SIMILARITY = 0.6
MAX_DRAFT_ITEMS = 50
_STOP = frozenset("a an the and or of to for in on at by with from into is are be it its this that as our we".split())
_WORD = re.compile(r"\w+", re.UNICODE)


# --- text helpers ---------------------------------------------------------------------------------------------------

def normalize_title(title: str) -> str:
    """Return the title as compared: NFKC, lowercased, words only, single spaces."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", title or "").casefold()))


def source_key(title: str) -> str:
    """Return the key a draft item is stored under: the SHA-256 of its normalized title (64 hex characters)."""
    return hashlib.sha256(normalize_title(title).encode()).hexdigest()


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def word_set(title: str) -> frozenset[str]:
    """Return the meaningful words of a title (stop words removed, simple plural folded)."""
    words = normalize_title(title).split()
    kept = frozenset(_stem(w) for w in words if w not in _STOP)
    return kept or frozenset(words)


def similarity(a: str, b: str) -> float:
    """Return the Jaccard index of two titles' word sets (0..1)."""
    wa, wb = word_set(a), word_set(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def is_overdue(item: ActionItem, today: date) -> bool:
    """Tell whether an item is past its due date and still open or in progress."""
    return item.due_date is not None and item.due_date < today and item.status in OPEN_STATUSES


# --- reads ----------------------------------------------------------------------------------------------------------

def get_or_404(*, session: Session, org_id: int, item_id: int) -> ActionItem:
    """Return the organization's action item or raise NotFound (other organizations' ids included)."""
    item = session.scalar(select(ActionItem).where(ActionItem.id == item_id, ActionItem.org_id == org_id))
    if item is None:
        raise NotFound(f"Action item {item_id} not found.")
    return item


def _parse_bool(value: object, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValidationFailed(f"{name} must be true or false.", [{"loc": [name], "msg": "true|false"}])


def list_items(
    *, session: Session, org_id: int, today: date, status: str | None = None, owner: str | None = None,
    incident_id: int | None = None, overdue: object = None, limit: int = 500,
) -> list[ActionItem]:
    """Return the organization's action items matching the filters: overdue first by due date, then newest first.

    overdue=true: due_date < today and status open or in_progress (false: the others).
    """
    query = select(ActionItem).where(ActionItem.org_id == org_id)
    if status:
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        bad = [s for s in wanted if s not in OPEN_STATUSES + CLOSED_STATUSES]
        if bad or not wanted:
            raise ValidationFailed("status must be open, in_progress, done or wont_do (comma-separated).",
                                   [{"loc": ["status"], "msg": "open|in_progress|done|wont_do"}])
        query = query.where(ActionItem.status.in_(wanted))
    if owner and owner.strip():
        if len(owner) > OWNER_MAX:
            raise ValidationFailed("owner is too long.", [{"loc": ["owner"], "msg": f"at most {OWNER_MAX}"}])
        query = query.where(func.lower(ActionItem.owner) == owner.strip().lower())
    if incident_id is not None:
        query = query.where(ActionItem.incident_id == incident_id)
    late = (ActionItem.due_date < today) & ActionItem.status.in_(OPEN_STATUSES)
    flag = _parse_bool(overdue, "overdue")
    if flag is True:
        query = query.where(late)
    elif flag is False:
        query = query.where(~late | ActionItem.due_date.is_(None))
    rows = list(session.scalars(query.order_by(ActionItem.id.desc()).limit(max(1, min(limit, 2000)))))
    rows.sort(key=lambda i: (0, i.due_date, -i.id) if is_overdue(i, today) else (1, date.max, -i.id))
    return rows


def duplicates_of(*, session: Session, items: list[ActionItem]) -> dict[int, ActionItem]:
    """Return the items the given ones repeat, by id (one query)."""
    ids = {i.duplicate_of_id for i in items if i.duplicate_of_id}
    if not ids:
        return {}
    org_ids = {i.org_id for i in items}
    rows = session.scalars(select(ActionItem).where(ActionItem.id.in_(ids), ActionItem.org_id.in_(org_ids)))
    return {r.id: r for r in rows}


# --- writes ---------------------------------------------------------------------------------------------------------

def _member_user_id(session: Session, org_id: int, owner: str | None) -> int | None:
    """Return the member whose email is `owner`, if the owner is one (otherwise it is a team's name)."""
    if not owner or "@" not in owner:
        return None
    return session.scalar(select(User.id).join(Membership, Membership.user_id == User.id)
                          .where(Membership.org_id == org_id, func.lower(User.email) == owner.strip().lower()))


def _incident_service(incident: Incident) -> str | None:
    names = incident.service_names
    return names[0] if names else None


def _incident(session: Session, org_id: int, incident_id: int) -> Incident:
    incident = session.scalar(select(Incident).where(Incident.id == incident_id, Incident.org_id == org_id))
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found.")
    return incident


def create(*, session: Session, actor: Actor, incident_id: int, data: ActionItemCreate, now: datetime) -> ActionItem:
    """Add a manual action item to an incident of the actor's organization (members and up)."""
    incident = _incident(session, actor.org_id, incident_id)
    require(actor.role, Action.WRITE_INCIDENTS)
    item = ActionItem(
        org_id=actor.org_id, incident_id=incident.id, title=data.title, description=data.description,
        priority=data.priority, owner=data.owner, owner_user_id=_member_user_id(session, actor.org_id, data.owner),
        due_date=data.due_date, status="open", evidence=[], service=_incident_service(incident), source="manual",
        created_by=actor.label, created_at=now, updated_at=now,
    )
    session.add(item)
    session.flush()
    trackers.notify(session, item, "created", {}, now)
    return item


def update(*, session: Session, actor: Actor, item: ActionItem, data: ActionItemUpdate, now: datetime) -> ActionItem:
    """Apply a PATCH (members and up): completed_at is set on done/wont_do and cleared when reopened."""
    require(actor.role, Action.WRITE_INCIDENTS)
    changes: dict[str, list] = {}
    sent = data.model_fields_set
    for name in ("title", "priority", "due_date", "owner", "status"):
        if name not in sent:
            continue
        new = getattr(data, name)
        old = getattr(item, name)
        if new == old:
            continue
        changes[name] = [old.isoformat() if isinstance(old, date) else old,
                         new.isoformat() if isinstance(new, date) else new]
        setattr(item, name, new)
        if name == "owner":
            item.owner_user_id = _member_user_id(session, item.org_id, new)
        if name == "status":
            if new in CLOSED_STATUSES:
                item.completed_at = now
            else:
                item.completed_at = None
    if changes:
        item.updated_at = now
        session.flush()
        trackers.notify(session, item, "updated", changes, now)
    return item


def keep_separate(*, session: Session, actor: Actor, item: ActionItem, now: datetime) -> ActionItem:
    """Clear the item's repeat link (a person decided it is not the same work)."""
    require(actor.role, Action.WRITE_INCIDENTS)
    if item.duplicate_of_id is not None:
        old, item.duplicate_of_id, item.updated_at = item.duplicate_of_id, None, now
        session.flush()
        trackers.notify(session, item, "updated", {"duplicate_of_id": [old, None]}, now)
    return item


def close_as_duplicate(*, session: Session, actor: Actor, item: ActionItem, now: datetime) -> ActionItem:
    """Close an item that repeats another one (status wont_do; the link stays as the reason)."""
    return update(session=session, actor=actor, item=item, data=ActionItemUpdate(status="wont_do"), now=now)


# --- from the draft -------------------------------------------------------------------------------------------------

def draft_items(sections: dict | None) -> list[dict]:
    """Return the well-formed action items of a postmortem's sections (title required), at most MAX_DRAFT_ITEMS."""
    raw = (sections or {}).get("action_items") or []
    out = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("title"), str) and normalize_title(entry["title"]):
            out.append(entry)
    return out[:MAX_DRAFT_ITEMS]


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:limit] or None


def open_repeat(session: Session, *, incident: Incident, title: str) -> ActionItem | None:
    """Return the open action item of another incident on this incident's service with the same intent, if any."""
    found = _repeat_of(session, org_id=incident.org_id, incident_id=incident.id,
                       service=_incident_service(incident), title=title)
    return session.get(ActionItem, found) if found else None


def _repeat_of(session: Session, *, org_id: int, incident_id: int, service: str | None, title: str) -> int | None:
    if not service:
        return None
    candidates = session.scalars(select(ActionItem).where(
        ActionItem.org_id == org_id, ActionItem.incident_id != incident_id, ActionItem.service == service,
        ActionItem.status.in_(OPEN_STATUSES)).order_by(ActionItem.id))
    best, best_score = None, SIMILARITY
    for c in candidates:
        score = similarity(title, c.title)
        if score >= best_score and (best is None or score > best_score):
            best, best_score = c.id, score
    return best


def materialize(
    *, session: Session, org_id: int, incident_id: int, sections: dict | None, actor_label: str | None, now: datetime,
) -> list[ActionItem]:
    """Make a record of each of the draft's action items that has none yet; return the items of the draft.

    Idempotent: an item is keyed by (org, incident, SHA-256 of its normalized title) under a unique constraint; each
    insert runs in a savepoint, so a concurrent call that inserted first makes this one read its row instead.
    The owner is the draft's suggested owner (a team; the drafter never names a person for writing a commit).
    """
    incident = _incident(session, org_id, incident_id)
    service = _incident_service(incident)
    result: list[ActionItem] = []
    seen: set[str] = set()
    for entry in draft_items(sections):
        title = _text(entry["title"], TITLE_MAX)
        key = source_key(title)
        if key in seen:
            continue
        seen.add(key)
        existing = session.scalar(select(ActionItem).where(
            ActionItem.org_id == org_id, ActionItem.incident_id == incident_id, ActionItem.source_key == key))
        if existing is not None:
            result.append(existing)
            continue
        priority = entry.get("priority") if entry.get("priority") in PRIORITIES else "medium"
        owner = _text(entry.get("suggested_owner"), OWNER_MAX)
        kind = entry.get("kind") if entry.get("kind") in ("detect", "mitigate", "prevent") else None
        evidence = [e for e in entry.get("evidence") or [] if isinstance(e, str)][:20] \
            if isinstance(entry.get("evidence"), list) else []
        item = ActionItem(
            org_id=org_id, incident_id=incident_id, title=title, description="", priority=priority, owner=owner,
            owner_user_id=_member_user_id(session, org_id, owner), status="open", kind=kind, evidence=evidence,
            service=service, source="draft", source_key=key,
            duplicate_of_id=_repeat_of(session, org_id=org_id, incident_id=incident_id, service=service, title=title),
            created_by=actor_label, created_at=now, updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(item)
                session.flush()
        except IntegrityError:
            # why: another transaction made it between our read and our insert; the savepoint kept ours intact
            existing = session.scalar(select(ActionItem).where(
                ActionItem.org_id == org_id, ActionItem.incident_id == incident_id, ActionItem.source_key == key))
            if existing is None:
                raise
            result.append(existing)
            continue
        trackers.notify(session, item, "created", {}, now)
        result.append(item)
    return result


def _emit_changed(session: Session, item: ActionItem, event: str, changes: dict, now: datetime) -> None:
    """Tell the organization's outbound webhooks that an action item was created or changed."""
    outbound.emit(session=session, org_id=item.org_id, event_type="action_item.changed", now=now, data={
        "action_item_id": item.id, "incident_id": item.incident_id, "event": event, "title": item.title,
        "status": item.status, "priority": item.priority, "owner": item.owner,
        "due_date": item.due_date.isoformat() if item.due_date else None, "changes": changes,
        "external": item.external})


trackers.listeners.append(_emit_changed)
