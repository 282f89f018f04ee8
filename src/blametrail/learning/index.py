"""Keep the search index in step with what it indexes, inside the writing transaction.

An `after_flush` listener on every ORM session looks at the incidents, updates (timeline entries of kind `update`),
postmortems and action items the flush wrote; for each whose searchable text changed it replaces that record's
rows in `search_doc` (the full-text structures follow it: FTS5 triggers on SQLite, a generated tsvector on
PostgreSQL). A record deleted is removed; an incident deleted takes its rows with it (ON DELETE CASCADE).
Nothing is written when only other fields change (an alert bumping `updated_at` costs nothing here).

`rebuild` fills the index from the tables (migration 0011 for existing rows; `blametrail search-reindex`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import delete, event, insert, inspect, select
from sqlalchemy.orm import Session

from blametrail.actions.models import ActionItem
from blametrail.engines.sections import SECTION_TITLES
from blametrail.incidents.models import Incident, TimelineEntry
from blametrail.learning.models import SearchDoc
from blametrail.postmortems.models import Postmortem

# each indexed model: its kind in the index and the fields whose change rewrites its rows
_WATCHED = {Incident: ("incident", ("title", "description")), TimelineEntry: ("update", ("body", "kind")),
            ActionItem: ("action_item", ("title", "description")), Postmortem: ("postmortem", ("sections",))}
MAX_BODY = 100_000  # a document's text is cut here (a pasted log does not need indexing in full)


def section_texts(sections: dict | None) -> Iterator[tuple[str, str, str]]:
    """Yield (key, title, plain text) for each non-empty section of a postmortem's sections."""
    data = sections or {}
    for key, value in data.items():
        if key in ("severity",):
            continue
        if key == "extra":
            for extra_key, text in (value or {}).items():
                if isinstance(text, str) and text.strip():
                    yield f"extra:{extra_key}", extra_key.replace("_", " ").capitalize(), text
            continue
        text = _flatten(key, value)
        if text.strip():
            yield key, SECTION_TITLES.get(key, key), text


def _flatten(key: str, value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if key == "customer_impact":
            return " ".join([str(value.get("description") or "")] + [str(s) for s in value.get("affected_services")
                                                                      or []])
        if key == "confidence":
            return str(value.get("reason") or "")
        return " ".join(str(v) for v in value.values() if isinstance(v, str))
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, dict):
                lines.append(" ".join(str(item.get(f) or "") for f in ("title", "description", "suggested_owner")
                                      if item.get(f)))
        return "\n".join(lines)
    return ""


def docs_for(obj, incident_title: str | None = None) -> list[dict]:
    """Return the search rows a record should have now (none for records that are not searchable)."""
    if isinstance(obj, Incident):
        return [_row(obj.org_id, obj.id, "incident", obj.id, "", obj.title, obj.description or "", obj.started_at)]
    if isinstance(obj, TimelineEntry):
        if obj.kind != "update" or not (obj.body or "").strip():
            return []
        return [_row(obj.org_id, obj.incident_id, "update", obj.id, "", obj.author or "", obj.body, obj.at)]
    if isinstance(obj, ActionItem):
        return [_row(obj.org_id, obj.incident_id, "action_item", obj.id, "", obj.title, obj.description or "",
                     obj.created_at)]
    if isinstance(obj, Postmortem):
        at = obj.updated_at or obj.created_at
        return [_row(obj.org_id, obj.incident_id, "postmortem", obj.id, key, title, text, at)
                for key, title, text in section_texts(obj.sections)]
    return []


def _row(org_id: int, incident_id: int, kind: str, ref_id: int, section: str, title: str, body: str,
         at: datetime) -> dict:
    return {"org_id": org_id, "incident_id": incident_id, "kind": kind, "ref_id": ref_id, "section": section,
            "title": (title or "")[:1000], "body": (body or "")[:MAX_BODY], "at": at}


def _changed(obj) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in _WATCHED[type(obj)][1])


def _after_flush(session: Session, _context) -> None:
    new = [o for o in session.new if type(o) in _WATCHED]
    changed = [o for o in session.dirty if type(o) in _WATCHED and _changed(o)]
    gone = [o for o in session.deleted if type(o) in _WATCHED]
    if new or changed or gone:
        replace(session, changed + new, [*changed, *gone])


def replace(session: Session, touched: Iterable, stale: Iterable = ()) -> None:
    """Drop the index rows of `stale` records, then index `touched` ones with their current text."""
    conn = session.connection()
    rows: list[dict] = []
    for obj in stale:
        conn.execute(delete(SearchDoc).where(SearchDoc.kind == _WATCHED[type(obj)][0], SearchDoc.ref_id == obj.id))
    for obj in touched:
        rows += docs_for(obj)
    if rows:
        conn.execute(insert(SearchDoc), rows)


def rebuild(session: Session, *, batch: int = 2000) -> int:
    """Index every searchable record from scratch; return how many rows the index holds."""
    conn = session.connection()
    conn.execute(delete(SearchDoc))
    total = 0
    for model in (Incident, TimelineEntry, ActionItem, Postmortem):
        query = select(model).order_by(model.id).execution_options(yield_per=batch)
        if model is TimelineEntry:
            query = query.where(TimelineEntry.kind == "update")
        rows: list[dict] = []
        for obj in session.scalars(query):
            rows += docs_for(obj)
            if len(rows) >= batch:
                conn.execute(insert(SearchDoc), rows)
                total, rows = total + len(rows), []
        if rows:
            conn.execute(insert(SearchDoc), rows)
            total += len(rows)
        session.expunge_all()
    return total


def install() -> None:
    """Listen on every session (idempotent): imported by runtime and models, so any writer keeps the index."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


install()
