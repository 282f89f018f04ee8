"""Analytics across an organization's incidents: how many, how fast, what recurs, what gets done, how good the drafts
are. Every figure comes from the stored rows, read as plain columns (never ORM objects) and summarised in numpy.

Timings are measured from the incident's start (`started_at`, when the impact began):
- detect: until the incident was opened (`created_at`; 0 when it was opened at or before the start),
- acknowledge: until the first acknowledgement (PagerDuty, Opsgenie or a person),
- mitigate: until the impact ended (`mitigated_at`),
- resolve: until it was resolved.
Each as median and p90 in minutes, overall and per group (service, severity or month), over incidents that started
in the range. Draft quality reads the latest DRAFT_SAMPLE postmortems that were drafted in the range.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.actions.models import ActionItem
from blametrail.analysis import similarity
from blametrail.clock import as_utc
from blametrail.engines.sections import SECTION_TITLES
from blametrail.errors import ValidationFailed
from blametrail.incidents.models import Incident, IncidentService
from blametrail.learning.index import section_texts
from blametrail.learning.models import IncidentFingerprint
from blametrail.postmortems.models import GenerationRun, Postmortem

GROUPS = ("service", "severity", "month")
MEASURES = ("detect", "acknowledge", "mitigate", "resolve")
MEASURE_LABELS = {"detect": "Time to detect", "acknowledge": "Time to acknowledge", "mitigate": "Time to mitigate",
                  "resolve": "Time to resolve"}
DEFAULT_DAYS = 365
MAX_DAYS = 3 * 366
DRAFT_SAMPLE = 500
TOP = 10
AI_SECTIONS = ("summary", "customer_impact", "timeline", "root_cause", "contributing_factors", "what_went_well",
               "what_went_poorly", "action_items")


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime  # exclusive


def range_from(start: datetime | None, end: datetime | None, now: datetime) -> Range:
    """Return the range asked for (default: the last 365 days); refuse an empty or over-long one."""
    end = end or (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
    start = start or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ValidationFailed("from must be before to.", [{"loc": ["query", "from"], "msg": "after to"}])
    if end - start > timedelta(days=MAX_DAYS):
        raise ValidationFailed(f"The range may span at most {MAX_DAYS} days.",
                               [{"loc": ["query", "from"], "msg": f"at most {MAX_DAYS} days before to"}])
    return Range(start, end)


def report(session: Session, *, org_id: int, when: Range, group_by: str = "service", today: date) -> dict:
    """Return every figure of the analytics page for one organization and range."""
    if group_by not in GROUPS:
        raise ValidationFailed(f"group_by must be one of {', '.join(GROUPS)}.",
                               [{"loc": ["query", "group_by"], "msg": "one of " + ", ".join(GROUPS)}])
    rows = session.execute(
        select(Incident.id, Incident.started_at, Incident.created_at, Incident.acknowledged_at, Incident.mitigated_at,
               Incident.resolved_at, Incident.severity)
        .where(Incident.org_id == org_id, Incident.started_at >= when.start, Incident.started_at < when.end)
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    services = _services(session, org_id, when) if rows else {}
    minutes = {m: _minutes(rows, i) for m, i in (("detect", 2), ("acknowledge", 3), ("mitigate", 4), ("resolve", 5))}
    months = np.array([_month(r[1]) for r in rows], dtype=object)
    severities = np.array([r[6] or "unrated" for r in rows], dtype=object)
    return {
        "range": {"from": when.start, "to": when.end},
        "group_by": group_by,
        "incidents": {"total": len(rows), "by_month": _by_month(when, months, severities)},
        "timings": {"overall": _timing(minutes, np.ones(len(rows), dtype=bool)),
                    "groups": _groups(group_by, rows, ids, minutes, months, severities, services)},
        "recurring": _recurring(session, org_id, when, services),
        "action_items": _actions(session, org_id, when, today),
        "draft_quality": _drafts(session, org_id, when),
    }


def _minutes(rows, index: int) -> np.ndarray:
    out = np.full(len(rows), np.nan)
    for n, r in enumerate(rows):
        if r[index] is not None:
            out[n] = (as_utc(r[index]) - as_utc(r[1])).total_seconds() / 60
    # why: an incident opened before its impact began has detected it at once; other negative spans are bad data
    out[out < 0] = 0 if index == 2 else np.nan
    return out


def _month(value: datetime) -> str:
    return f"{value:%Y-%m}"


def _stats(values: np.ndarray) -> dict:
    known = values[~np.isnan(values)]
    if not known.size:
        return {"count": 0, "median": None, "p90": None}
    return {"count": int(known.size), "median": round(float(np.median(known)), 1),
            "p90": round(float(np.percentile(known, 90)), 1)}


def _timing(minutes: dict, mask: np.ndarray) -> dict:
    return {"incidents": int(mask.sum()), **{m: _stats(minutes[m][mask]) for m in MEASURES}}


def _services(session: Session, org_id: int, when: Range) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    query = (select(IncidentService.incident_id, IncidentService.service)
             .join(Incident, Incident.id == IncidentService.incident_id)
             .where(Incident.org_id == org_id, Incident.started_at >= when.start, Incident.started_at < when.end))
    for incident_id, service in session.execute(query):
        out.setdefault(incident_id, []).append(service)
    return out


def _groups(group_by, rows, ids, minutes, months, severities, services) -> list[dict]:
    if group_by == "month":
        keys = {k: months == k for k in sorted(set(months))}
    elif group_by == "severity":
        keys = {k: severities == k for k in sorted(set(severities), key=lambda s: (s == "unrated", s))}
    else:
        positions: dict[str, list[int]] = {}
        for n, iid in enumerate(ids.tolist()):
            for service in services.get(iid, ()):
                positions.setdefault(service, []).append(n)
        keys = {}
        for service, where in sorted(positions.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:50]:
            mask = np.zeros(len(rows), dtype=bool)
            mask[where] = True
            keys[service] = mask
    return [{"key": k, **_timing(minutes, mask)} for k, mask in keys.items()]


def _by_month(when: Range, months: np.ndarray, severities: np.ndarray) -> list[dict]:
    out, cursor = [], date(when.start.year, when.start.month, 1)
    last = (when.end - timedelta(microseconds=1)).date()
    counts = Counter(zip(months.tolist(), severities.tolist(), strict=True))
    while cursor <= last:
        key = f"{cursor:%Y-%m}"
        by = {s: n for (m, s), n in counts.items() if m == key}
        out.append({"month": key, "count": sum(by.values()), "by_severity": dict(sorted(by.items()))})
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    return out


def _recurring(session: Session, org_id: int, when: Range, services: dict[int, list[str]]) -> dict:
    service_counts = Counter(s for names in services.values() for s in names)
    categories = Counter()
    query = (select(IncidentFingerprint.data).join(Incident, Incident.id == IncidentFingerprint.incident_id)
             .where(IncidentFingerprint.org_id == org_id, Incident.started_at >= when.start,
                    Incident.started_at < when.end))
    for (data,) in session.execute(query):
        if (data or {}).get("category"):
            categories[data["category"]] += 1
    return {"causes": [{"key": k, "label": similarity.category_label(k), "count": n}
                       for k, n in categories.most_common(TOP) if n >= 2],
            "services": [{"service": k, "count": n} for k, n in service_counts.most_common(TOP) if n >= 2]}


def _actions(session: Session, org_id: int, when: Range, today: date) -> dict:
    rows = session.execute(
        select(ActionItem.status, ActionItem.due_date, ActionItem.created_at, ActionItem.completed_at)
        .where(ActionItem.org_id == org_id, ActionItem.created_at >= when.start, ActionItem.created_at < when.end)
    ).all()
    by_status = Counter(r[0] for r in rows)
    overdue = sum(1 for r in rows if r[1] is not None and r[1] < today and r[0] in ("open", "in_progress"))
    closed = by_status.get("done", 0) + by_status.get("wont_do", 0)
    days = np.array([(as_utc(r[3]) - as_utc(r[2])).total_seconds() / 86400 for r in rows
                     if r[0] == "done" and r[3] is not None])
    stats = _stats(days)
    return {"total": len(rows), "by_status": {s: by_status.get(s, 0) for s in ("open", "in_progress", "done",
                                                                              "wont_do")},
            "completion": round(by_status.get("done", 0) / len(rows), 3) if rows else None,
            "closed": closed, "overdue": overdue,
            "days_to_done": {"median": stats["median"], "p90": stats["p90"]}}


def _drafts(session: Session, org_id: int, when: Range) -> dict:
    pms = session.execute(
        select(Postmortem.id, Postmortem.original_sections, Postmortem.sections, Postmortem.generated_at,
               Postmortem.published_at, Postmortem.edited_keys)
        .where(Postmortem.org_id == org_id, Postmortem.generated_at >= when.start, Postmortem.generated_at < when.end)
        .order_by(Postmortem.generated_at.desc()).limit(DRAFT_SAMPLE)
    ).all()
    kept: dict[str, list[float]] = {}
    to_publish = []
    for _pid, original, current, generated, published, _edited in pms:
        if original and current:
            before = {k: t for k, _, t in section_texts(original)}
            after = {k: t for k, _, t in section_texts(current)}
            for key in AI_SECTIONS:
                if key in before:
                    kept.setdefault(key, []).append(_survival(before[key], after.get(key, "")))
        if generated and published and published >= generated:
            to_publish.append((as_utc(published) - as_utc(generated)).total_seconds() / 3600)
    runs = Counter()
    per_pm = Counter()
    if pms:
        query = (select(GenerationRun.postmortem_id, GenerationRun.status)
                 .where(GenerationRun.postmortem_id.in_([p[0] for p in pms])))
        for pid, status in session.execute(query):
            runs[status] += 1
            per_pm[pid] += 1
    finished = sum(runs[s] for s in ("succeeded", "fallback", "failed"))
    publish = _stats(np.array(to_publish))
    return {
        "postmortems": len(pms),
        "survival": [{"section": k, "title": SECTION_TITLES[k], "kept": round(float(np.mean(v)), 3), "n": len(v)}
                     for k, v in ((k, kept[k]) for k in AI_SECTIONS if k in kept)],
        "hours_to_publish": {"median": publish["median"], "p90": publish["p90"], "count": publish["count"]},
        "regenerations": sum(max(0, n - 1) for n in per_pm.values()),
        "regenerations_per_postmortem": round(sum(max(0, n - 1) for n in per_pm.values()) / len(pms), 3)
        if pms else None,
        "fallback_share": round(runs["fallback"] / finished, 3) if finished else None,
        "runs": dict(runs),
    }


def _survival(before: str, after: str) -> float:
    """Share of the AI's text a section kept through review: 1 − normalised edit distance, word by word."""
    a, b = before.split(), after.split()
    if not a:
        return 1.0
    if a == b:
        return 1.0
    if len(a) * len(b) > 4_000_000:  # why: SequenceMatcher is quadratic; a huge section is judged by its ends
        a, b = a[:2000], b[:2000]
    return round(difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)


def csv_rows(data: dict) -> list[list]:
    """Return the timing table (one row per group, and the overall one) for CSV download."""
    head = ["group", "incidents"] + [f"{m}_{s}_minutes" for m in MEASURES for s in ("median", "p90")]
    rows = [head]
    for g in [*data["timings"]["groups"], {"key": "all", **data["timings"]["overall"]}]:
        rows.append([g["key"], g["incidents"]] + [g[m][s] if g[m][s] is not None else "" for m in MEASURES
                                                  for s in ("median", "p90")])
    return rows
