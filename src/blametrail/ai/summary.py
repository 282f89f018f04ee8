"""The live incident summary: schema, the built-in writer, grounding of model output, and the refresh service.

The summary is rebuilt from the same generation context as the postmortem (drafting.build_pack) whenever evidence
arrives on an open incident: the incidents service calls `request_refresh`, which defers the `refresh_summary` job
unless one is already queued (debounce). The job uses the engine's `summarize(pack)` when it has one (LLM
engines) and grounds the answer; on any error, or when the organization has AI turned off, it writes the
built-in summary, which is pure and deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.ai.grounding import ID_PATTERN, UNVERIFIED
from blametrail.ai.models import IncidentSummary
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.response import clip, stamp
from blametrail.errors import UpstreamError

log = logging.getLogger(__name__)

TASK = "refresh_summary"
STALE_QUEUED = timedelta(minutes=2)  # a request queued longer than this is presumed lost and re-deferred
_TEXT = 4_000
_ITEMS = 20
_TRIED = re.compile(
    r"\b(?:roll(?:ed|ing)?[ -]?back|revert(?:ed|ing)?|restart(?:ed|ing)?|reboot(?:ed)?|scal(?:ed|ing)|fail(?:ed)?[ -]?over|"
    r"disabl(?:ed|ing)|enabl(?:ed|ing)|flush(?:ed|ing)|purg(?:ed|ing)|drain(?:ed|ing)|increas(?:ed|ing)|"
    r"decreas(?:ed|ing)|patch(?:ed|ing)|hotfix(?:ed)?|redeploy(?:ed|ing)?|tried|trying|mitigat(?:ed|ing)|"
    r"block(?:ed|ing)|rotat(?:ed|ing)|clear(?:ed|ing)|bump(?:ed|ing)|kill(?:ed|ing))\b", re.I)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CitedText(_Strict):
    text: str = Field(..., min_length=1, max_length=_TEXT)
    evidence: list[str] = Field(..., min_length=1, max_length=20)


class SummaryOut(_Strict):
    """A short, cited live summary of an open incident."""

    what_is_happening: str = Field("", max_length=_TEXT)
    impact_so_far: str = Field("", max_length=_TEXT)
    suspects: list[CitedText] = Field(default_factory=list, max_length=_ITEMS)
    tried: list[CitedText] = Field(default_factory=list, max_length=_ITEMS)
    citations: list[str] = Field(default_factory=list, max_length=500)


# --- the built-in writer (pure) ------------------------------------------------------------------------

def _cite(ids) -> str:
    ids = list(dict.fromkeys(i for i in ids if i))
    return f" (evidence: {', '.join(ids)})" if ids else ""


def write_summary(pack: EvidencePack) -> dict:
    """Write the summary from the evidence alone: updates, alerts, monitors, ranked suspects, metric and log findings."""
    from blametrail.analysis.verdict import ranked_suspects
    from blametrail.analysis.suspects import describe_suspect

    inc = pack.incident
    updates = sorted(pack.updates, key=lambda u: (u.at, u.id))
    happening: list[str] = []
    state = "was resolved" if inc.resolved_at else "is open"
    happening.append(f"{inc.title} {state}" + (f" ({inc.severity})" if inc.severity else "") +
                     f", started {stamp(inc.started_at)}" + _cite(s.id for s in pack.status_changes[:1]) + ".")
    if updates:
        last = updates[-1]
        happening.append(f"Latest update ({stamp(last.at)}, {last.author or 'unknown'}): “{clip(last.body, 300)}”"
                         + _cite([last.id]) + ".")
    firing = [a for a in pack.alerts if a.status == "firing"]
    if firing:
        names = ", ".join(dict.fromkeys(a.name for a in firing[:5]))
        happening.append(f"Alerts firing: {names}" + _cite(a.id for a in firing[:5]) + ".")
    down = [m for m in pack.monitor_events if m.state == "down"]
    if down:
        happening.append("Monitors down: " + ", ".join(dict.fromkeys(m.monitor for m in down[:5]))
                         + _cite(m.id for m in down[:5]) + ".")

    impact: list[str] = []
    minutes = max(0, int(((inc.resolved_at or pack.window_end) - inc.started_at).total_seconds() // 60))
    impact.append(f"{minutes} minutes so far" if not inc.resolved_at else f"Lasted {minutes} minutes")
    impact[-1] += f", affecting {', '.join(inc.services)}." if inc.services else "; no services recorded."
    for m in sorted(pack.metrics, key=lambda m: -abs(m.magnitude))[:3]:
        unit = f" {m.unit}" if m.unit else ""
        impact.append(f"{m.series} went {m.direction} from {m.before:g}{unit} to {m.after:g}{unit} at {stamp(m.onset)}"
                      + _cite([m.id]) + ".")
    for m in down[:3]:
        if m.total_checks:
            impact.append(f"{m.monitor}: {m.failed_checks} of {m.total_checks} checks failed" + _cite([m.id]) + ".")
    new_logs = [g for g in pack.logs if g.new or (g.spike_ratio or 0) >= 2][:3]
    for g in new_logs:
        change = "new" if g.new else f"×{g.spike_ratio:.1f}"
        impact.append(f"Log errors ({change}, {g.incident_count} times): {clip(g.template, 160)}" + _cite([g.id]) + ".")

    suspects = []
    try:
        ranked = ranked_suspects(pack)
    except Exception:  # why: a ranking failure must not cost the team the rest of the summary
        log.exception("ranking suspects for the summary failed")
        ranked = ()
    for s in ranked[:3]:
        text, cited = describe_suspect(pack, s)
        reasons = "; ".join(s.reasons[:3])
        suspects.append({"text": clip(f"{text[:1].upper()}{text[1:]}" + (f": {reasons}" if reasons else ""), 600),
                         "evidence": list(dict.fromkeys([s.deploy_id, *cited, *s.update_ids]))[:20]})

    tried = [{"text": clip(u.body, 300), "evidence": [u.id]} for u in updates if _TRIED.search(u.body)][-5:]
    out = {"what_is_happening": " ".join(happening)[:_TEXT], "impact_so_far": " ".join(impact)[:_TEXT],
           "suspects": suspects, "tried": tried}
    out["citations"] = _citations(out, pack.evidence_ids())
    return SummaryOut.model_validate(out).model_dump()


def _citations(out: dict, valid: set[str]) -> list[str]:
    found = ID_PATTERN.findall(out.get("what_is_happening", "") + " " + out.get("impact_so_far", ""))
    for item in (*out.get("suspects", ()), *out.get("tried", ())):
        found += item["evidence"]
    return [i for i in dict.fromkeys(found) if i in valid]


# --- grounding of model output ----------------------------------------------------------------------------

def ground_summary(raw: dict, pack: EvidencePack) -> dict:
    """Validate a model's summary: drop unknown ids, items that cite nothing valid, and keys outside the schema."""
    if not isinstance(raw, dict):
        raise UpstreamError("The model's answer was not a JSON object.")
    valid = pack.evidence_ids()

    def text(value, limit=_TEXT) -> str:
        if not isinstance(value, str):
            return ""
        return ID_PATTERN.sub(lambda m: m.group(0) if m.group(0) in valid else UNVERIFIED, value)[:limit].strip()

    def items(value) -> list[dict]:
        out = []
        for entry in value if isinstance(value, list) else []:
            if not isinstance(entry, dict):
                continue
            evidence = entry.get("evidence")
            evidence = [str(i) for i in (evidence if isinstance(evidence, list) else []) if str(i) in valid]
            body = text(entry.get("text"))
            if body and evidence:
                out.append({"text": body, "evidence": list(dict.fromkeys(evidence))[:20]})
        return out[:_ITEMS]

    out = {"what_is_happening": text(raw.get("what_is_happening")), "impact_so_far": text(raw.get("impact_so_far")),
           "suspects": items(raw.get("suspects")), "tried": items(raw.get("tried"))}
    listed = raw.get("citations") if isinstance(raw.get("citations"), list) else []
    out["citations"] = list(dict.fromkeys([*_citations(out, valid), *(str(i) for i in listed if str(i) in valid)]))
    return SummaryOut.model_validate(out).model_dump()


def summarize_with(engine, pack: EvidencePack) -> tuple[dict, str, str | None]:
    """Summarise with the engine when it can, else the built-in writer; return (content, engine label, error)."""
    summarize = getattr(engine, "summarize", None) if engine is not None else None
    if summarize is None:
        return write_summary(pack), "builtin", None
    label = str(getattr(engine, "label", "engine"))
    try:
        return ground_summary(summarize(pack), pack), label, None
    except Exception as exc:  # why: the team always gets a summary; the reason is kept for the page
        log.warning("summary with %s failed: %s", label, exc)
        return write_summary(pack), "builtin", f"{label} failed: {exc}. This is the built-in summary instead."


# --- the refresh service ------------------------------------------------------------------------------------

def evidence_version(pack: EvidencePack) -> str:
    """Return a hash of what the summary depends on (not the moving window end of an open incident)."""
    inc = pack.incident
    key = "|".join([inc.title, inc.severity or "", str(inc.resolved_at), ",".join(inc.services),
                    ",".join(sorted(pack.evidence_ids()))])
    return hashlib.sha256(key.encode()).hexdigest()


def find(*, session: Session, incident_id: int) -> IncidentSummary | None:
    """Return the incident's stored summary row, if any."""
    return session.scalar(select(IncidentSummary).where(IncidentSummary.incident_id == incident_id))


def _row(session: Session, incident, now: datetime) -> IncidentSummary:
    return _get_or_add(session, incident, now)[0]


def _get_or_add(session: Session, incident, now: datetime) -> tuple[IncidentSummary, bool]:
    row = find(session=session, incident_id=incident.id)
    if row is not None:
        return row, False
    row = IncidentSummary(org_id=incident.org_id, incident_id=incident.id, status="queued", requested_at=now)
    try:
        with session.begin_nested():  # why: two requests may race to create the one row per incident
            session.add(row)
    except IntegrityError:
        return find(session=session, incident_id=incident.id), False
    return row, True


def request_refresh(*, session: Session, incident, now: datetime) -> None:
    """Queue a summary refresh after this transaction commits, unless one is already queued (debounce)."""
    row, created = _get_or_add(session, incident, now)
    _queue(session, row, created, incident.id, now)


def request_refreshes(*, session: Session, incidents: list, now: datetime) -> None:
    """request_refresh for several incidents, reading their summary rows in one query."""
    ids = sorted({incident.id for incident in incidents})
    rows = {row.incident_id: row for row in
            session.scalars(select(IncidentSummary).where(IncidentSummary.incident_id.in_(ids)))} if ids else {}
    for incident in {incident.id: incident for incident in incidents}.values():
        row = rows.get(incident.id)
        if row is None:
            request_refresh(session=session, incident=incident, now=now)
        else:
            _queue(session, row, False, incident.id, now)


def _queue(session: Session, row: IncidentSummary, created: bool, incident_id: int, now: datetime) -> None:
    queued = row.status == "queued" and row.requested_at is not None and now - row.requested_at < STALE_QUEUED
    if queued and not created:
        return  # a refresh is already on its way; it re-queues itself if it missed this evidence
    if any(task == TASK and args == (incident_id,) for task, args in session.info.get("deferred", [])):
        return
    row.status, row.requested_at = "queued", now
    db.defer(session, TASK, incident_id)


def _engine_allowed(session: Session, incident, engine):
    from blametrail.orgs.models import Organization

    org = session.get(Organization, incident.org_id)
    return engine if org is not None and org.ai_enabled else None


def _store(session: Session, incident, content: dict, label: str, error: str | None, version: str,
           now: datetime) -> IncidentSummary:
    row = _row(session, incident, now)
    row.status, row.content, row.engine, row.error = "ready", content, db.fit(IncidentSummary.engine, label), error
    row.evidence_version, row.generated_at = version, now
    return row


def refresh(session: Session, incident, *, now: datetime, lookback_minutes: int, engine=None) -> IncidentSummary:
    """Rebuild and store the incident's summary inside this session (the built-in engine unless one is given)."""
    from blametrail.postmortems.drafting import build_pack

    pack = build_pack(session=session, incident=incident, lookback_minutes=lookback_minutes, now=now)
    content, label, error = summarize_with(_engine_allowed(session, incident, engine), pack)
    return _store(session, incident, content, label, error, evidence_version(pack), now)


def _evidence_marker(session: Session, incident) -> tuple:
    """Return what changes whenever the incident's evidence may have (cheap: no evidence pack is built)."""
    from blametrail.deploys.models import Deploy
    from blametrail.incidents.models import TimelineEntry

    last_entry = session.scalar(select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident.id))
    last_deploy = session.scalar(select(func.max(Deploy.id)).where(Deploy.org_id == incident.org_id))
    return incident.status, incident.updated_at, last_entry, last_deploy


def run_refresh(*, factory: sessionmaker[Session], incident_id: int, clock: Callable[[], datetime],
                lookback_minutes: int, engine=None) -> str:
    """The job: read the evidence, summarise outside any transaction, store; re-queue if evidence moved meanwhile."""
    from blametrail.incidents.models import Incident
    from blametrail.postmortems.drafting import build_pack

    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return "missing"
        pack = build_pack(session=session, incident=incident, lookback_minutes=lookback_minutes, now=clock())
        marker = _evidence_marker(session, incident)
        engine = _engine_allowed(session, incident, engine)
    version = evidence_version(pack)
    content, label, error = summarize_with(engine, pack)  # why: a model call never holds database locks
    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return "missing"
        row = _store(session, incident, content, label, error, version, clock())
        if _evidence_marker(session, incident) != marker:  # evidence arrived while this ran (debounced): go again
            row.status, row.requested_at = "queued", clock()
            db.defer(session, TASK, incident_id)
            return "requeued"
    return "ready"


def to_read(row: IncidentSummary | None, *, fallback: dict | None = None) -> dict:
    """Return the API shape: {status, generated_at, engine, content, error}."""
    if row is None:
        return {"status": "ready" if fallback is not None else "none", "generated_at": None,
                "engine": "builtin" if fallback is not None else None, "content": fallback, "error": None}
    return {"status": row.status, "generated_at": row.generated_at, "engine": row.engine, "content": row.content,
            "error": row.error}
