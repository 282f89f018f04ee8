"""The response as the evidence records it: timings, rollback, cadence, stated cause, retrospective notes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from blametrail.analysis.evidence import DeployEvidence, EvidencePack, UpdateEvidence
from blametrail.analysis.text import clip, plural, sentences
from blametrail.analysis.times import minutes_between, stamp, utc

SLOW_DETECTION_MINUTES = 10
SLOW_FIRST_UPDATE_MINUTES = 15
SLOW_MITIGATION_MINUTES = 60
LONG_GAP_MINUTES = 30

ROLLBACK = re.compile(r"\broll(?:ed|ing)?[ -]?back\b|\brollbacks?\b|\brevert(?:ed|ing|s)?\b", re.I)
_MITIGATION = re.compile(
    r"\bmitigat\w*|\broll(?:ed|ing)?[ -]?back\b|\brollbacks?\b|\brevert(?:ed|ing)?\b"
    r"|\bfix(?:es)? (?:is |was |has been |have been )?(?:deployed|shipped|rolled out|applied|live)\b"
    r"|\bdeployed (?:a |the )?(?:fix|hotfix|patch)\b|\bhotfix\w*|\brecover(?:ed|ing|y)\b|\brestored\b"
    r"|\bback to normal\b|\bstabili[sz]ed\b",
    re.I,
)
FAILED = re.compile(  # an attempt that did not work; symptoms alone ("still failing") are not attempts
    r"\bdid(?:n't| not) (?:help|work|fix|change)\b|\bno (?:effect|change|improvement|luck)\b"
    r"|\b(?:is |was )?not help(?:ing|ed)?\b|\bwithout (?:effect|success)\b|\bunsuccessful\b"
    r"|\bmade no difference\b",
    re.I,
)
_CAUSE_STRONG = re.compile(
    r"\broot[- ]?cause\b|\bthe cause (?:was|is)\b|\bcaused by\b|\bwas caused\b|\bwas the cause\b", re.I
)
_CAUSE_WEAK = re.compile(r"\bbecause\b|\bdue to\b", re.I)
_NOT_KNOWN = re.compile(
    r"\bunknown\b|\bunclear\b|\bnot (?:yet )?(?:known|clear|identified|established|determined|confirmed)\b"
    r"|\b(?:still|are|am|is) (?:investigating|looking)\b|\blooking into\b|\bto follow\b|\bpending\b"
    r"|\btbd\b|\?\s*$",
    re.I,
)


@dataclass(frozen=True)
class Mention:
    """One sentence of one update that says something specific."""

    update_id: str
    at: datetime
    sentence: str


@dataclass(frozen=True)
class ResponseFacts:
    """What responders did and when, computed only from the evidence."""

    update_count: int
    first_update_id: str | None
    minutes_to_first_update: int | None
    detection_id: str | None  # first status change or update
    minutes_to_detection: int | None
    mitigation: Mention | None
    minutes_to_mitigation: int | None  # to the mitigation update, else to resolution
    rollback: Mention | None
    failed_attempts: tuple[Mention, ...]
    cause: Mention | None
    cause_is_explicit: bool  # "root cause"/"caused by" rather than "because"/"due to"
    longest_gap_minutes: int | None
    longest_gap_ids: tuple[str, str] | None
    process_owner: str | None  # the person who resolved it, else who posted most updates
    resolving_monitor: str | None


def sorted_updates(pack: EvidencePack) -> list[UpdateEvidence]:
    """Return the pack's updates in time order (ties keep their order)."""
    return sorted(pack.updates, key=lambda u: utc(u.at))


def analyse_response(pack: EvidencePack) -> ResponseFacts:
    """Compute response timings, rollback, failed attempts and the stated cause from the evidence."""
    inc = pack.incident
    start = utc(inc.started_at)
    updates = sorted_updates(pack)
    said = [(u, s) for u in updates for s in sentences(u.body)]
    first = updates[0] if updates else None
    signals = sorted([(utc(s.at), s.id) for s in pack.status_changes] + [(utc(u.at), u.id) for u in updates])
    mitigation = next(
        (Mention(u.id, u.at, s) for u, s in said if _MITIGATION.search(s) and not FAILED.search(s)), None
    )
    if mitigation is not None:
        to_mitigation: int | None = minutes_between(start, mitigation.at)
    else:
        to_mitigation = minutes_between(start, inc.resolved_at) if inc.resolved_at else None
    gaps = [(minutes_between(a.at, b.at), a.id, b.id) for a, b in zip(updates, updates[1:])]
    longest = max(gaps, key=lambda gap: gap[0]) if gaps else None
    cause, explicit = _stated_cause(updates)
    resolver = (inc.resolved_by or "").strip()
    return ResponseFacts(
        update_count=len(updates),
        first_update_id=first.id if first else None,
        minutes_to_first_update=minutes_between(start, first.at) if first else None,
        detection_id=signals[0][1] if signals else None,
        minutes_to_detection=minutes_between(start, signals[0][0]) if signals else None,
        mitigation=mitigation,
        minutes_to_mitigation=to_mitigation,
        rollback=next((Mention(u.id, u.at, s) for u, s in said if ROLLBACK.search(s)), None),
        failed_attempts=tuple(Mention(u.id, u.at, s) for u, s in said if FAILED.search(s)),
        cause=cause,
        cause_is_explicit=explicit,
        longest_gap_minutes=longest[0] if longest else None,
        longest_gap_ids=(longest[1], longest[2]) if longest else None,
        process_owner=_process_owner(resolver, updates),
        resolving_monitor=_monitor_name(resolver),
    )


def _is_monitor(resolver: str) -> bool:
    return resolver.lower().startswith("monitor:")


def _monitor_name(resolver: str) -> str | None:
    if not _is_monitor(resolver):
        return None
    return resolver.split(":", 1)[1].strip() or "(unnamed)"


def _stated_cause(updates: list[UpdateEvidence]) -> tuple[Mention | None, bool]:
    # Explicit wording beats "because"; among equals the latest update wins (understanding grows).
    best: Mention | None = None
    best_key = (0, -1)
    for index, upd in enumerate(updates):
        for sentence in sentences(upd.body):
            if _NOT_KNOWN.search(sentence):
                continue
            strength = 2 if _CAUSE_STRONG.search(sentence) else 1 if _CAUSE_WEAK.search(sentence) else 0
            if strength and (strength, index) > best_key:
                best, best_key = Mention(upd.id, upd.at, sentence), (strength, index)
    return best, best_key[0] == 2


def _process_owner(resolver: str, updates: list[UpdateEvidence]) -> str | None:
    if resolver and not _is_monitor(resolver):
        return resolver
    counts = Counter(u.author for u in updates if u.author)
    if not counts:
        return None
    first_seen: dict[str, int] = {}
    for index, upd in enumerate(updates):
        if upd.author:
            first_seen.setdefault(upd.author, index)
    return min(counts, key=lambda author: (-counts[author], first_seen[author]))


def went_well(facts: ResponseFacts, rollback_deploy: DeployEvidence | None) -> list[str]:
    """List what the response did well, with numbers from the evidence."""
    notes: list[str] = []
    first = facts.minutes_to_first_update
    if first is not None and first <= SLOW_FIRST_UPDATE_MINUTES:
        notes.append(
            f"The first human update was posted {plural(first, 'minute')} after the incident started "
            f"(evidence: {facts.first_update_id})."
        )
    if facts.rollback is not None:
        notes.append(
            f"A rollback was carried out, first mentioned at {stamp(facts.rollback.at)} "
            f"(evidence: {facts.rollback.update_id})."
        )
    elif rollback_deploy is not None:
        notes.append(
            f"A rollback of {rollback_deploy.service} to {rollback_deploy.version} was deployed at "
            f"{stamp(rollback_deploy.deployed_at)} (evidence: {rollback_deploy.id})."
        )
    mitigated = facts.minutes_to_mitigation
    if mitigated is not None and mitigated <= SLOW_MITIGATION_MINUTES:
        if facts.mitigation is not None:
            notes.append(
                f"Impact was mitigated {plural(mitigated, 'minute')} after the start "
                f"(evidence: {facts.mitigation.update_id})."
            )
        else:
            notes.append(f"The incident was resolved {plural(mitigated, 'minute')} after it started.")
    gap = facts.longest_gap_minutes
    if facts.update_count >= 3 and gap is not None and gap <= LONG_GAP_MINUTES:
        notes.append(
            f"Responders posted {facts.update_count} updates, never more than {plural(gap, 'minute')} apart."
        )
    if facts.cause is not None:
        notes.append(
            f"A cause was identified and written down during the incident (evidence: {facts.cause.update_id})."
        )
    if facts.resolving_monitor:
        notes.append(f"Recovery was detected automatically by monitor {facts.resolving_monitor}.")
    return notes


def went_poorly(pack: EvidencePack, facts: ResponseFacts) -> list[str]:
    """List what the response did poorly, with numbers from the evidence."""
    notes: list[str] = []
    if facts.update_count == 0:
        notes.append(
            "No human updates were posted to the incident timeline, so the response cannot be "
            "reconstructed from it."
        )
    first = facts.minutes_to_first_update
    if first is not None and first > SLOW_FIRST_UPDATE_MINUTES:
        notes.append(
            f"The first human update came {plural(first, 'minute')} after the incident started "
            f"(evidence: {facts.first_update_id})."
        )
    mitigated = facts.minutes_to_mitigation
    if mitigated is not None and mitigated > SLOW_MITIGATION_MINUTES:
        notes.append(f"Mitigation took {plural(mitigated, 'minute')} from the start of the incident.")
    gap = facts.longest_gap_minutes
    if gap is not None and gap > LONG_GAP_MINUTES and facts.longest_gap_ids:
        notes.append(
            f"The longest gap between updates was {plural(gap, 'minute')} "
            f"(evidence: {', '.join(facts.longest_gap_ids)})."
        )
    if facts.failed_attempts:
        ids = ", ".join(dict.fromkeys(m.update_id for m in facts.failed_attempts))
        notes.append(
            f"Updates record {plural(len(facts.failed_attempts), 'attempt')} that did not help "
            f"(evidence: {ids})."
        )
    if pack.incident.resolved_at is None:
        notes.append("The incident has no resolution time in the evidence, so its duration is unknown.")
    return notes


def contributing_factors(pack: EvidencePack, facts: ResponseFacts) -> list[str]:
    """List secondary factors that widened or prolonged the incident, as the evidence shows them."""
    factors: list[str] = []
    services = sorted({s for s in pack.incident.services if s.strip()})
    if len(services) > 1:
        factors.append(f"{len(services)} services were affected ({', '.join(services)}), widening the impact.")
    detected = facts.minutes_to_detection
    if detected is not None and detected >= SLOW_DETECTION_MINUTES:
        factors.append(
            f"Impact began {plural(detected, 'minute')} before the incident was first acknowledged, "
            f"delaying the response (evidence: {facts.detection_id})."
        )
    for attempt in facts.failed_attempts[:3]:
        factors.append(
            f"A remediation attempt did not help, prolonging the incident: “{clip(attempt.sentence)}” "
            f"(evidence: {attempt.update_id})."
        )
    return factors
