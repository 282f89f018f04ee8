"""Grounding: turn a model's raw output into valid, cited Sections, with facts taken from the data, not the model.

Rules (in order):
- Unknown top-level keys are discarded; a section of the wrong type is replaced by its default (noted).
- Citation ids that are not in the evidence pack are dropped, from `evidence` arrays and from the text
  (an id-like token in prose that names no evidence becomes "[unverified citation]").
- A timeline entry must cite at least one valid id and lie inside [window_start, window_end]; otherwise it is
  rejected. Entries that fail the schema are rejected one by one.
- After the resolution (the built-in engine's rule, analysis/timeline.py): the incident's timeline ends at its
  resolution. An entry dated after it is kept only when it cites evidence dated after it (and no later than the
  latest such evidence); it is marked `after_resolution: true` with the "After resolution: " prefix. An entry before
  the resolution is never marked, and is rejected when it cites only evidence from after it (misdated). Later
  evidence the model left out is added from the data, marked the same way, so both engines end with the same
  clearly marked part.
- The root cause must cite a valid id inline ("(evidence: deploy_4)"). The honest option when it does not:
  the section becomes the built-in "Root cause not established from the evidence." sentence saying the
  model's proposal cited nothing; the proposal itself is NOT kept in the section (an uncited claim, possibly
  injected by the evidence), only in `notes` for the audit record; the confidence drops to low.
- Duration and affected services come from the data. The severity is the incident's recorded one, else the one the
  written definitions give (analysis/severity.py), never the model's; a recorded severity below its definition is
  added to what went poorly, one above it (or a model's different choice) is noted in the confidence reason.
- Action items: evidence arrays keep valid ids only; a suggested owner who is a person in the evidence (a commit's
  author, an update's author, whoever opened or resolved it) is replaced by the service's team, or null.
- Confidence drops one level when citations were dropped or entries rejected, and the reason says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from blametrail.analysis import ids, severity, timeline
from blametrail.analysis.actions import owner_for
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.factors import severity_finding
from blametrail.analysis.ids import ID_PATTERN
from blametrail.analysis.verdict import ranked_suspects
from blametrail.analysis.writer import (
    NOT_ESTABLISHED,  # one sentence, shared with the built-in engine
)
from blametrail.clock import as_utc, minutes_between, parse_iso
from blametrail.engines.sections import (
    ACTION_KINDS,
    SECTION_KEYS,
    SEVERITIES,
    TIMELINE_SOURCES,
    ActionItem,
    Confidence,
    CustomerImpact,
    Sections,
    TimelineItem,
    dump,
)
from blametrail.errors import UpstreamError

UNCITED_ROOT_CAUSE = (f"{NOT_ESTABLISHED} The model proposed a cause without citing any evidence, so it was not kept; "
                      "check the timeline and the suspects.")
UNVERIFIED = "[unverified citation]"
_LOWER = {"high": "medium", "medium": "low", "low": "low"}
_TEXT_LISTS = ("contributing_factors", "what_went_well", "what_went_poorly")


@dataclass(frozen=True)
class Grounded:
    """Grounded sections (valid Sections JSON) and what grounding removed."""

    sections: dict
    dropped_citations: tuple[str, ...]
    rejected_entries: int
    notes: tuple[str, ...]


class _Ledger:
    def __init__(self, pack: EvidencePack) -> None:
        self.valid = pack.evidence_ids()
        self.dropped: list[str] = []
        self.notes: list[str] = []
        self.rejected = 0

    def drop(self, ident: str) -> None:
        if ident not in self.dropped:
            self.dropped.append(ident)

    def text(self, value, limit: int = 20_000) -> str:
        """Return a string with unknown id-like citations neutralised (non-strings become "")."""
        if not isinstance(value, str):
            return ""

        def sub(match: re.Match[str]) -> str:
            if match.group(0) in self.valid:
                return match.group(0)
            self.drop(match.group(0))
            return UNVERIFIED

        return ID_PATTERN.sub(sub, value)[:limit].strip()

    def cited(self, text: str) -> list[str]:
        return [m for m in dict.fromkeys(ID_PATTERN.findall(text)) if m in self.valid]

    def ids(self, value) -> list[str]:
        """Return the valid ids of an evidence array, dropping the rest."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return []
        kept = []
        for ident in value:
            ident = str(ident).strip() if isinstance(ident, (str, int)) else ""
            if ident in self.valid:
                if ident not in kept:
                    kept.append(ident)
            elif ident:
                self.drop(ident[:100])
        return kept


def _when(value) -> datetime | None:
    """A model's timestamp as aware UTC; None when unreadable or without a zone (unlike clock.to_utc, a model's naive
    time is not presumed UTC: it must say which)."""
    if isinstance(value, str):
        try:
            value = parse_iso(value)
        except ValueError:
            return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    return as_utc(value)


def duration_minutes(pack: EvidencePack) -> int | None:
    """Return the incident's duration from the data (half up), or None while open."""
    inc = pack.incident
    if inc.resolved_at is None:
        return None
    return minutes_between(inc.started_at, inc.resolved_at)


def _services(pack: EvidencePack, proposed) -> list[str]:
    if pack.incident.services:
        return list(pack.incident.services)
    seen = {s for s in (*(a.service for a in pack.alerts), *(m.service for m in pack.metrics),
                        *(g.service for g in pack.logs), *(d.service for d in pack.deploys)) if s}
    return [s for s in (proposed if isinstance(proposed, list) else []) if isinstance(s, str) and s in seen]


def _evidence_times(pack: EvidencePack) -> dict[str, datetime]:
    """Return when each piece of evidence happened (a commit at its deploy), as aware UTC."""
    found = {u.id: u.at for u in pack.updates} | {s.id: s.at for s in pack.status_changes}
    found |= {m.id: m.at for m in pack.monitor_events} | {a.id: a.at for a in pack.alerts}
    found |= {m.id: m.onset for m in pack.metrics} | {g.id: g.first_seen for g in pack.logs if g.first_seen}
    for d in pack.deploys:
        found[d.id] = d.deployed_at
        found.update({c.id: d.deployed_at for c in d.commits})
    return {k: _aware(v) for k, v in found.items()}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timeline(raw, pack: EvidencePack, led: _Ledger) -> list[dict]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        led.notes.append("The timeline was not a list and was discarded.")
        raw = []
    start, end = _aware(pack.window_start), _aware(pack.window_end)
    times = _evidence_times(pack)
    later = {i for i, at in times.items() if timeline.after_resolution(pack, at)}
    latest = max((times[i] for i in later), default=None)
    kept = []
    for entry in raw:
        if not isinstance(entry, dict):
            led.rejected += 1
            continue
        evidence = led.ids(entry.get("evidence"))
        description = led.text(entry.get("description"))
        at = _when(entry.get("at"))
        if not evidence or not description or at is None or at < start:
            led.rejected += 1
            continue
        after = timeline.after_resolution(pack, at)
        if after and (latest is None or at > latest or not later & set(evidence)):
            led.rejected += 1  # dated after the resolution without evidence from then
            continue
        if not after and (at > end or set(evidence) <= later):
            led.rejected += 1  # outside the window, or dated inside it while citing only evidence from after it
            continue
        source = entry.get("source")
        if source not in TIMELINE_SOURCES:
            source = ids.source_of(evidence[0])
        if after:
            description = timeline.mark_after_resolution(description.removeprefix(timeline.AFTER_RESOLUTION.strip()))
        try:
            item = TimelineItem(at=at, source=source, description=description, evidence=evidence[:50],
                                after_resolution=after)
        except ValidationError:
            led.rejected += 1
            continue
        kept.append(item.model_dump(mode="json"))
    cited = {i for item in kept if item["after_resolution"] for i in item["evidence"]}
    for row in timeline.build(pack, ranked_suspects(pack)):
        if row.get("after_resolution") and row["evidence"] and not cited & set(row["evidence"]):
            kept.append(TimelineItem.model_validate(row).model_dump(mode="json"))
    kept.sort(key=lambda i: i["at"])
    return kept


def _root_cause(raw, led: _Ledger) -> tuple[str, bool]:
    """Return the root cause and whether it was replaced for citing nothing."""
    text = led.text(raw)
    if not text or text.startswith(NOT_ESTABLISHED):
        return text or NOT_ESTABLISHED, False
    if led.cited(text):
        return text, False
    led.notes.append(f"The model's root cause cited no valid evidence and was replaced; it proposed: {text[:2000]}")
    return UNCITED_ROOT_CAUSE, True


def _people(pack: EvidencePack) -> set[str]:
    """Return the lower-cased names of the people the evidence mentions (authors, openers, resolvers)."""
    names = {c.author for d in pack.deploys for c in d.commits} | {u.author for u in pack.updates}
    names |= {s.actor for s in pack.status_changes} | {pack.incident.resolved_by, pack.incident.created_by}
    return {n.strip().lower() for n in names if n and n.strip() and not n.lower().startswith(("monitor:", "alert:"))}


def _owners(items: list[dict], pack: EvidencePack, owners: Mapping[str, str], led: _Ledger) -> list[dict]:
    """Replace suggested owners who are people in the evidence by the service's team (or null); check evidence."""
    people = _people(pack)
    services = sorted({s.strip() for s in pack.incident.services if s.strip()})
    replaced = 0
    for item in items:
        owner = (item.get("suggested_owner") or "").strip()
        if owner and owner.lower() in people:
            item["suggested_owner"] = owner_for(None, services, owners)
            replaced += 1
    if replaced:
        led.notes.append(f"{replaced} suggested owner(s) named a person from the evidence and were replaced by the "
                         "service's team or left empty (blameless: owners are teams).")
    return items


def _items(raw, model, led: _Ledger, key: str) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        led.notes.append(f"{key} was not a list and was discarded.")
        return []
    out = []
    for entry in raw:
        try:
            if model is None:
                if not isinstance(entry, str):
                    raise TypeError
                value = led.text(entry, 20_000)
                if value:
                    out.append(value)
            else:
                if not isinstance(entry, dict):
                    raise TypeError
                data = {k: entry[k] for k in model.model_fields if k in entry}
                if "title" in data:
                    data["title"] = led.text(data["title"], 1_000)
                if model is ActionItem:
                    if "evidence" in data:
                        data["evidence"] = led.ids(data["evidence"])[:50]
                    if data.get("kind") not in ACTION_KINDS:
                        data.pop("kind", None)  # why: an unknown grouping is not worth losing the item over
                out.append(model.model_validate(data).model_dump(mode="json"))
        except (TypeError, ValidationError):
            led.rejected += 1
    return out


_EXTRA_KEY = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def ground(raw: dict, pack: EvidencePack, *, service_owners: Mapping[str, str] | None = None,
           severity_definitions: tuple[severity.Definition, ...] = severity.DEFAULT_DEFINITIONS) -> Grounded:
    """Validate a model's sections against the schema and the evidence; return what can be trusted."""
    if not isinstance(raw, dict):
        raise UpstreamError("The model's answer was not a JSON object of postmortem sections.")
    led = _Ledger(pack)
    extra = sorted(str(k)[:50] for k in raw if k not in SECTION_KEYS and k != "extra")
    if extra:
        led.notes.append("Ignored keys that are not sections: " + ", ".join(extra))

    impact_raw = raw.get("customer_impact") if isinstance(raw.get("customer_impact"), dict) else {}
    impact = CustomerImpact(description=led.text(impact_raw.get("description")), duration_minutes=duration_minutes(pack),
                            affected_services=_services(pack, impact_raw.get("affected_services")))
    rated = severity.assess(pack, impact.duration_minutes, impact.affected_services, severity_definitions)
    proposed = raw.get("severity") if raw.get("severity") in SEVERITIES else None
    root_cause, replaced = _root_cause(raw.get("root_cause"), led)
    data = {
        "summary": led.text(raw.get("summary")),
        "severity": rated.severity,
        "customer_impact": impact.model_dump(mode="json"),
        "timeline": _timeline(raw.get("timeline"), pack, led),
        "root_cause": root_cause,
        "action_items": _owners(_items(raw.get("action_items"), ActionItem, led, "action_items"), pack,
                                service_owners or {}, led),
    }
    for key in _TEXT_LISTS:
        data[key] = _items(raw.get(key), None, led, key)
    below = severity_finding(rated)
    if below is not None and below.text not in data["what_went_poorly"]:
        data["what_went_poorly"].append(below.text)

    conf_raw = raw.get("confidence") if isinstance(raw.get("confidence"), dict) else {}
    level = conf_raw.get("level") if conf_raw.get("level") in _LOWER else "low"
    reasons = [led.text(conf_raw.get("reason"), 10_000)]
    if led.dropped or led.rejected:
        level = _LOWER[level]
        what = []
        if led.dropped:
            # why: the fake ids are not echoed into the draft, where they would read as citations; the run keeps them
            what.append(f"{len(led.dropped)} citation(s) to evidence that does not exist were removed")
        if led.rejected:
            what.append(f"{led.rejected} entr{'y was' if led.rejected == 1 else 'ies were'} rejected for citing "
                        "nothing valid, lying outside the incident window or not matching the schema")
        reasons.append("Confidence lowered: " + "; ".join(what) + ".")
    if replaced:
        level = "low"
        reasons.append("The root cause was not established: the model's proposal cited no evidence.")
    note = severity.confidence_note(rated)
    if note:
        reasons.append(note)
    if rated.recorded is None and proposed is not None and proposed != rated.severity:
        reasons.append(f"The model proposed {proposed}; the written definitions decide when none is recorded.")
    data["confidence"] = Confidence(level=level, reason=" ".join(r for r in reasons if r)[:20_000]).model_dump()
    # the template's extra sections: grounded like any prose; keys outside the template are dropped by the job
    raw_extra = raw.get("extra") if isinstance(raw.get("extra"), dict) else {}
    data["extra"] = {k: led.text(v) for k, v in list(raw_extra.items())[:20]
                     if isinstance(k, str) and _EXTRA_KEY.match(k) and isinstance(v, str) and v.strip()}
    try:
        sections = Sections.model_validate(data)
    except ValidationError as exc:  # why: should not happen after coercion; never store an invalid draft
        raise UpstreamError(f"The model's sections could not be made valid: {exc.errors()[0]['msg']}") from exc
    return Grounded(sections=dump(sections), dropped_citations=tuple(led.dropped), rejected_entries=led.rejected,
                    notes=tuple(led.notes))
