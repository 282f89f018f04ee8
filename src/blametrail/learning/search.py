"""Full-text search across an organization's incidents, updates, postmortem sections and action items.

One interface, two engines: SQLite's FTS5 (bm25 ranking, `snippet()`) and PostgreSQL's full-text search (a
GIN-indexed tsvector, `ts_rank_cd`, `ts_headline`). The words of a query must all appear (the last one as a
prefix, so a half-typed word finds); English stemming on both ("failing" finds "failed"). Every query is fenced to
one organization. Snippets come back HTML-escaped with the matched words in <mark>.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from blametrail.clock import to_utc
from blametrail.db import UTCDateTime
from blametrail.errors import ValidationFailed
from blametrail.learning.models import KINDS

MAX_QUERY = 200
MAX_TERMS = 12
MAX_LIMIT = 100
# why: ranking reads every match's text; a common word matches a good share of a large history, so the most recent
# RANK_POOL matches (with the filters applied) are ranked, and older ones only count when there are fewer
RANK_POOL = 2000
SEVERITIES = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")
STATUSES = ("open", "resolved")
_WORD = re.compile(r"\w+", re.UNICODE)
_START, _STOP = "\x02", "\x03"


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    service: str | None = None
    severity: str | None = None
    status: str | None = None
    start: datetime | None = None  # incidents that started at or after
    end: datetime | None = None  # incidents that started before


@dataclass(frozen=True)
class Hit:
    kind: str
    incident_id: int
    ref_id: int
    section: str
    title: str  # the record's own title (an action item's, a section's, the author of an update)
    incident_title: str
    snippet: str  # HTML: escaped text, matches in <mark>
    score: float
    at: datetime


def terms(query: str | None) -> list[str]:
    """Return the words of a query (lower case, at most MAX_TERMS); raise ValidationFailed for none or too long."""
    query = (query or "").strip()
    if len(query) > MAX_QUERY:
        raise ValidationFailed(f"The search is too long: at most {MAX_QUERY} characters.",
                               [{"loc": ["query", "q"], "msg": f"at most {MAX_QUERY} characters"}])
    words = [w.lower() for w in _WORD.findall(query) if len(w) <= 64][:MAX_TERMS]
    if not words:
        raise ValidationFailed("Type a word to search for.", [{"loc": ["query", "q"], "msg": "no words to search"}])
    return words


def day_bound(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """Parse a from/to bound: a date (to = the whole day) or an ISO-8601 time; raise ValidationFailed."""
    if not value or not value.strip():
        return None
    raw = value.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{name} must be a date (2026-10-03) or an ISO-8601 time.",
                               [{"loc": ["query", name], "msg": "a date or ISO-8601 time"}]) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_filters(f: Filters) -> None:
    """Refuse unknown kinds, severities and statuses with a 422 naming the choices."""
    for name, value, allowed in (("kind", f.kind, KINDS), ("severity", f.severity, SEVERITIES),
                                 ("status", f.status, STATUSES)):
        if value and value not in allowed:
            raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}.",
                                   [{"loc": ["query", name], "msg": "one of " + ", ".join(allowed)}])
    if f.service and len(f.service) > 120:
        raise ValidationFailed("service is too long.", [{"loc": ["query", "service"], "msg": "at most 120"}])
    if f.start and f.end and f.start >= f.end:
        raise ValidationFailed("from must be before to.", [{"loc": ["query", "from"], "msg": "after to"}])


def search(session: Session, *, org_id: int, query: str, filters: Filters = Filters(), limit: int = 20,
           offset: int = 0) -> list[Hit]:
    """Return the best matches for `query` in one organization, best first (nothing for a blank query)."""
    check_filters(filters)
    if not (query or "").strip():
        return []
    words = terms(query)
    limit, offset = max(1, min(int(limit), MAX_LIMIT)), max(0, min(int(offset), 10_000))
    where, params = _where(filters)
    params.update(org=org_id, limit=limit, offset=offset)
    if session.get_bind().dialect.name == "postgresql":
        rows = _postgres(session, words, where, params)
    else:
        rows = _sqlite(session, words, where, params)
    return [Hit(kind=r.kind, incident_id=r.incident_id, ref_id=r.ref_id, section=r.section, title=r.title or "",
                incident_title=r.incident_title, snippet=_marked(r.snip or ""), score=round(float(r.score), 4),
                at=to_utc(r.at)) for r in rows]


def _where(f: Filters) -> tuple[str, dict]:
    parts, params = [], {}
    if f.kind:
        parts.append("d.kind = :kind")
        params["kind"] = f.kind
    if f.severity:
        parts.append("i.severity = :severity")
        params["severity"] = f.severity
    if f.status:
        parts.append("i.status = :status")
        params["status"] = f.status
    if f.start:
        parts.append("i.started_at >= :start")
        params["start"] = f.start
    if f.end:
        parts.append("i.started_at < :end")
        params["end"] = f.end
    if f.service:
        parts.append("EXISTS (SELECT 1 FROM incident_service s WHERE s.incident_id = i.id AND s.service = :service)")
        params["service"] = f.service.strip()
    return "".join(f" AND {p}" for p in parts), params


def _sqlite(session: Session, words: list[str], where: str, params: dict):
    match = " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
    narrowed = any(k in params for k in ("service", "severity", "status", "start", "end"))
    # why: with incident filters the matches are few already, and finding the floor would walk most of them twice
    floor = None if narrowed else session.execute(_typed(f"""
        SELECT search_fts.rowid FROM search_fts JOIN search_doc d ON d.id = search_fts.rowid
        JOIN incident i ON i.id = d.incident_id
        WHERE search_fts MATCH :match AND d.org_id = :org{where}
        ORDER BY search_fts.rowid DESC LIMIT 1 OFFSET :pool""", params),
        {**params, "match": match, "pool": RANK_POOL - 1}).scalar()
    recent = " AND search_fts.rowid >= :floor" if floor is not None else ""
    sql = f"""
        SELECT d.kind, d.incident_id, d.ref_id, d.section, d.title, d.at, i.title AS incident_title,
               snippet(search_fts, -1, '{_START}', '{_STOP}', '…', 24) AS snip,
               -bm25(search_fts, 3.0, 1.0) AS score
        FROM search_fts JOIN search_doc d ON d.id = search_fts.rowid JOIN incident i ON i.id = d.incident_id
        WHERE search_fts MATCH :match AND d.org_id = :org{where}{recent}
        ORDER BY bm25(search_fts, 3.0, 1.0), d.id DESC LIMIT :limit OFFSET :offset"""
    return session.execute(_typed(sql, params), {**params, "match": match, "floor": floor}).all()


def _postgres(session: Session, words: list[str], where: str, params: dict):
    tsquery = " & ".join([*words[:-1], f"{words[-1]}:*"])
    options = f"StartSel={_START}, StopSel={_STOP}, MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter=\" … \""
    sql = f"""
        -- the tsquery is inline, never in a CTE: the planner must see it to choose GIN or a backward id scan
        WITH recent AS (
            SELECT d.id FROM search_doc d JOIN incident i ON i.id = d.incident_id
            WHERE d.org_id = :org AND d.tsv @@ to_tsquery('english', :tsq){where}
            ORDER BY d.id DESC LIMIT :pool),
        best AS (
            SELECT d.id, d.kind, d.incident_id, d.ref_id, d.section, d.title, d.body, d.at, i.title AS incident_title,
                   ts_rank_cd(d.tsv, to_tsquery('english', :tsq)) AS score
            FROM recent JOIN search_doc d ON d.id = recent.id JOIN incident i ON i.id = d.incident_id
            ORDER BY score DESC, d.id DESC LIMIT :limit OFFSET :offset)
        SELECT best.kind, best.incident_id, best.ref_id, best.section, best.title, best.at, best.incident_title,
               best.score,
               CASE WHEN to_tsvector('english', best.body) @@ to_tsquery('english', :tsq)
                    THEN ts_headline('english', best.body, to_tsquery('english', :tsq), :options)
                    ELSE ts_headline('english', best.title, to_tsquery('english', :tsq), :options) END AS snip
        FROM best ORDER BY best.score DESC, best.id DESC"""
    # why: psycopg prepares a statement run five times, and PostgreSQL may then plan it once for any tsquery (a
    # generic plan): rare words would walk the whole id index, common ones the whole GIN posting list. Each search
    # is planned for its own words.
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return session.execute(_typed(sql, params), {**params, "tsq": tsquery, "options": options,
                                                 "pool": RANK_POOL}).all()


def _typed(sql: str, params: dict):
    # why: bounds are bound as the columns store them (naive UTC text on SQLite, timestamptz on PostgreSQL)
    return text(sql).bindparams(*(bindparam(n, type_=UTCDateTime()) for n in ("start", "end") if n in params))


def _marked(snippet: str) -> str:
    out = html.escape(snippet, quote=False)
    return out.replace(_START, "<mark>").replace(_STOP, "</mark>")
