"""Score a replayed incident's draft against the facts (pure: dicts and dataclasses in, an Outcome out).

The metrics, in the order the table shows them (docs/evaluation.md has the long form):

duration      |draft customer_impact.duration_minutes - (resolved_at - started_at)| in minutes; exact when <= 1.
key events    the share of the incident's key events whose evidence id (the update, alert or deploy the replay
              created for it) some timeline row cites.
order         over pairs of cited key events with different true times, the share whose first citing rows come in
              the true order (1.0 = the draft's timeline never swaps two key events).
invented      timeline rows that cite nothing, cite an id the server does not hold for the incident, or are dated
              more than TIME_TOLERANCE from every id they cite. Counted, not averaged: the target is zero.
severity      the draft's severity against the band a reviewer would give (the replay sets none, so it is inferred).
cause         the share of the root-cause term groups found in the draft's root_cause text.
trigger       for incidents whose triggering change was recorded: whether the root cause cites its deploy id.
factors       the share of expected contributing factors matched (all term groups) by one drafted contributing
              factor or "what went poorly" item.
actions       the share of expected action items matched by one drafted action item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from blametrail.scenarios.real.incidents import Expected, RealIncident
from blametrail.scenarios.real.replay import Replayed

TIME_TOLERANCE = timedelta(minutes=5)
DURATION_TOLERANCE = 1.0  # minutes: the draft rounds to whole minutes
_ID = re.compile(r"\b[a-z]+_\d+\b")


@dataclass(frozen=True)
class Outcome:
    """How the draft of one real incident did; `error` is set when the replay itself failed."""

    incident: str
    split: str
    severity_truth: str
    severity_draft: str | None = None
    duration_error: float | None = None  # minutes; None when the draft states no duration
    key_cited: int = 0
    key_total: int = 0
    order: float | None = None  # None with fewer than two cited key events at different times
    invented: int = 0
    rows: int = 0
    cause: float = 0.0
    trigger_cited: bool | None = None  # None when no triggering change was recorded
    factors_matched: int = 0
    factors_total: int = 0
    factors_drafted: int = 0
    actions_matched: int = 0
    actions_total: int = 0
    actions_drafted: int = 0
    missed_key: tuple[str, ...] = ()  # refs of key events no row cites
    invented_rows: tuple[str, ...] = ()  # "at source: description" of the invented rows
    missed_factors: tuple[str, ...] = ()
    missed_actions: tuple[str, ...] = ()
    draft_seconds: float = 0.0
    error: str | None = None

    @property
    def key_recall(self) -> float:
        """Return the share of key events cited."""
        return self.key_cited / self.key_total if self.key_total else 0.0

    @property
    def factor_overlap(self) -> float:
        """Return the share of expected contributing factors matched."""
        return self.factors_matched / self.factors_total if self.factors_total else 0.0

    @property
    def action_overlap(self) -> float:
        """Return the share of expected action items matched."""
        return self.actions_matched / self.actions_total if self.actions_total else 0.0

    @property
    def duration_exact(self) -> bool:
        """Tell whether the drafted duration is within a minute of the truth."""
        return self.duration_error is not None and self.duration_error <= DURATION_TOLERANCE


def failed(incident: RealIncident, error: str) -> Outcome:
    """Return the outcome of a replay that did not produce a draft: every metric at its worst."""
    return Outcome(incident=incident.id, split=incident.split, severity_truth=incident.severity,
                   key_total=len(incident.key_events), factors_total=len(incident.contributing_factors),
                   actions_total=len(incident.action_items), trigger_cited=False if incident.trigger else None,
                   missed_key=tuple(e.ref for e in incident.key_events), error=error)


def score(incident: RealIncident, replayed: Replayed) -> Outcome:
    """Score the replay's draft against the incident's facts."""
    draft = replayed.draft
    if replayed.status != "draft" and not draft:
        return failed(incident, f"the postmortem ended {replayed.status} without sections")
    rows = [r for r in draft.get("timeline") or [] if isinstance(r, dict)]
    cited_keys, missed = _key_events(incident, replayed, rows)
    invented = [r for r in rows if _invented(r, replayed.known)]
    root = str(draft.get("root_cause") or "")
    factors = _texts(draft.get("contributing_factors")) + _texts(draft.get("what_went_poorly"))
    actions = _texts(draft.get("action_items"))
    factor_hits = [_matched(f, factors) for f in incident.contributing_factors]
    action_hits = [_matched(a, actions) for a in incident.action_items]
    trigger = None
    if incident.trigger is not None:
        wanted = replayed.evidence.get(incident.trigger)
        trigger = wanted is not None and wanted in set(_ID.findall(root))
    return Outcome(
        incident=incident.id, split=incident.split, severity_truth=incident.severity,
        severity_draft=draft.get("severity") if isinstance(draft.get("severity"), str) else None,
        duration_error=_duration_error(incident, draft), key_cited=len(cited_keys), key_total=len(incident.key_events),
        order=_order(incident, replayed, rows, cited_keys), invented=len(invented), rows=len(rows),
        cause=incident.root_cause.terms.share(root), trigger_cited=trigger,
        factors_matched=sum(factor_hits), factors_total=len(factor_hits), factors_drafted=len(factors),
        actions_matched=sum(action_hits), actions_total=len(action_hits), actions_drafted=len(actions),
        missed_key=tuple(missed),
        invented_rows=tuple(f"{r.get('at')} {r.get('source')}: {str(r.get('description'))[:80]}" for r in invented),
        missed_factors=tuple(f.text for f, hit in zip(incident.contributing_factors, factor_hits, strict=True) if not hit),
        missed_actions=tuple(a.text for a, hit in zip(incident.action_items, action_hits, strict=True) if not hit),
        draft_seconds=round(replayed.draft_seconds, 3))


def _duration_error(incident: RealIncident, draft: dict) -> float | None:
    impact = draft.get("customer_impact")
    minutes = impact.get("duration_minutes") if isinstance(impact, dict) else None
    if not isinstance(minutes, int | float):
        return None
    return abs(float(minutes) - incident.duration_minutes)


def _cited(row: dict) -> list[str]:
    evidence = row.get("evidence")
    return [e for e in evidence if isinstance(e, str)] if isinstance(evidence, list) else []


def _key_events(incident: RealIncident, replayed: Replayed, rows: list[dict]) -> tuple[list[str], list[str]]:
    """Return (refs of key events some row cites, refs of those none cites)."""
    cited = {e for row in rows for e in _cited(row)}
    hit, missed = [], []
    for event in incident.key_events:
        (hit if replayed.evidence.get(event.ref) in cited else missed).append(event.ref)
    return hit, missed


def _order(incident: RealIncident, replayed: Replayed, rows: list[dict], refs: list[str]) -> float | None:
    """Return the share of cited key-event pairs the timeline keeps in their true order."""
    position = {}
    for ref in refs:
        wanted = replayed.evidence[ref]
        position[ref] = next(i for i, row in enumerate(rows) if wanted in _cited(row))
    events = [incident.event(ref) for ref in refs]
    pairs = good = 0
    for i, a in enumerate(events):
        for b in events[i + 1:]:
            if a.at == b.at:
                continue
            first, second = (a, b) if a.at < b.at else (b, a)
            pairs += 1
            good += position[first.ref] <= position[second.ref]
    return good / pairs if pairs else None


def _invented(row: dict, known: dict[str, datetime]) -> bool:
    """Tell whether a timeline row cites nothing the server holds, or is dated away from all it cites."""
    cited = _cited(row)
    if not cited or any(e not in known for e in cited):
        return True
    try:
        at = datetime.fromisoformat(str(row.get("at")).replace("Z", "+00:00"))
    except ValueError:
        return True
    return min(abs(at - known[e]) for e in cited) > TIME_TOLERANCE


def _texts(items: object) -> list[str]:
    """Return the text of each item of a drafted list, whether plain strings or objects (title and detail)."""
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.append(" ".join(str(v) for k, v in item.items()
                                if k in ("title", "text", "description", "detail", "why") and isinstance(v, str)))
    return [t for t in out if t.strip()]


def _matched(expected: Expected, drafted: list[str]) -> bool:
    return any(expected.terms.matches(text) for text in drafted)
