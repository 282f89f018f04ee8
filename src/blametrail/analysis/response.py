"""The response as the evidence records it: timings, rollback, cadence, stated cause, retrospective notes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from blametrail.analysis.detection import Detection
from blametrail.analysis.evidence import DeployEvidence, EvidencePack, UpdateEvidence
from blametrail.analysis.statements import CauseStatement, stated_cause
from blametrail.analysis.text import plural, sentences
from blametrail.analysis.times import minutes_between, stamp, utc

SLOW_FIRST_UPDATE_MINUTES = 15  # a first update later than this after the start went poorly
SLOW_MITIGATION_MINUTES = 60  # impact lasting longer than this before mitigation went poorly
LONG_GAP_MINUTES = 30  # updates further apart than this left people without news
QUICK_ALERT_MINUTES = 5  # an alert or monitor within this of the onset is quick detection (what went well)

ROLLBACK = re.compile(r"\broll(?:ed|ing)?[ -]?back\b|\brollbacks?\b|\brevert(?:ed|ing|s)?\b", re.I)
# why: "Rolling back" is an action under way, not mitigation; only done or observed recovery counts
_MITIGATION = re.compile(
    r"\bmitigated\b|\bmitigation (?:is |was )?(?:in place|applied|deployed|complete|done)\b"
    r"|\brolled[ -]?back\b|\breverted\b|\brollbacks? (?:of [\w.\- ]{1,60} )?(?:is |was |has )?"
    r"(?:out|complete|completed|done|finished|deployed|live|in place)\b"
    r"|\bfix(?:es)? (?:is |was |has been |have been )?(?:deployed|shipped|rolled out|applied|live|out)\b"
    r"|\bdeployed (?:a |the )?(?:fix|hotfix|patch)\b|\bhotfix(?:es)? (?:is |was )?(?:deployed|out|live|applied)\b"
    r"|\brecover(?:ed|ing|y)\b|\brestored\b|\bback to (?:normal|baseline)\b|\bstabili[sz]ed\b"
    r"|\b(?:answering|working|works|healthy|resolving) again\b"
    r"|\berror(?: rate)?s? (?:is |are )?(?:dropping|falling|decreasing|going down|gone)\b|\berrors gone\b",
    re.I,
)
FAILED = re.compile(  # an attempt that did not work; symptoms alone ("still failing") are not attempts
    r"\bdid(?:n't| not) (?:help|work|fix|change)\b|\bno (?:effect|change|improvement|luck)\b"
    r"|\b(?:is |was )?not help(?:ing|ed)?\b|\bwithout (?:effect|success)\b|\bunsuccessful\b"
    r"|\bmade no difference\b",
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
    """What responders did and when, computed only from the evidence (updates after resolution excepted)."""

    update_count: int  # updates up to the resolution
    first_update_id: str | None
    minutes_to_first_update: int | None
    mitigation: Mention | None
    minutes_to_mitigation: int | None  # to the mitigation update, else to resolution
    rollback: Mention | None
    failed_attempts: tuple[Mention, ...]
    cause: CauseStatement | None  # from every update, those after resolution included
    cause_is_explicit: bool  # "root cause"/"caused by" rather than "because"/"due to"
    longest_gap_minutes: int | None
    longest_gap_ids: tuple[str, str] | None
    resolving_monitor: str | None
    later_updates: tuple[str, ...] = ()  # ids of updates posted after the resolution


def is_mitigation(sentence: str) -> bool:
    """Tell whether a sentence reports a rollback, a fix or a recovery (rather than the impact itself)."""
    return bool(_MITIGATION.search(sentence) or ROLLBACK.search(sentence))


def sorted_updates(pack: EvidencePack) -> list[UpdateEvidence]:
    """Return the pack's updates in time order (ties keep their order)."""
    return sorted(pack.updates, key=lambda u: utc(u.at))


def during(pack: EvidencePack) -> list[UpdateEvidence]:
    """Return the updates posted up to the resolution (all of them while the incident is open), in time order."""
    end = pack.incident.resolved_at
    return [u for u in sorted_updates(pack) if end is None or utc(u.at) <= utc(end)]


def analyse_response(pack: EvidencePack) -> ResponseFacts:
    """Compute response timings, rollback, failed attempts and the stated cause from the evidence."""
    inc = pack.incident
    start = utc(inc.started_at)
    everything = sorted_updates(pack)
    updates = during(pack)
    said = [(u, s) for u in updates for s in sentences(u.body)]
    first = updates[0] if updates else None
    mitigation = next(
        (Mention(u.id, u.at, s) for u, s in said if _MITIGATION.search(s) and not FAILED.search(s)), None
    )
    if mitigation is not None:
        to_mitigation: int | None = minutes_between(start, mitigation.at)
    else:
        to_mitigation = minutes_between(start, inc.resolved_at) if inc.resolved_at else None
    gaps = [(minutes_between(a.at, b.at), a.id, b.id) for a, b in zip(updates, updates[1:])]
    longest = max(gaps, key=lambda gap: gap[0]) if gaps else None
    cause = stated_cause(everything)
    resolver = (inc.resolved_by or "").strip()
    within = {u.id for u in updates}
    return ResponseFacts(
        update_count=len(updates),
        first_update_id=first.id if first else None,
        minutes_to_first_update=minutes_between(start, first.at) if first else None,
        mitigation=mitigation,
        minutes_to_mitigation=to_mitigation,
        rollback=next((Mention(u.id, u.at, s) for u, s in said if ROLLBACK.search(s)), None),
        failed_attempts=tuple(Mention(u.id, u.at, s) for u, s in said if FAILED.search(s)),
        cause=cause,
        cause_is_explicit=cause is not None and cause.explicit,
        longest_gap_minutes=longest[0] if longest else None,
        longest_gap_ids=(longest[1], longest[2]) if longest else None,
        resolving_monitor=_monitor_name(resolver),
        later_updates=tuple(u.id for u in everything if u.id not in within),
    )


def _is_monitor(resolver: str) -> bool:
    return resolver.lower().startswith("monitor:")


def _monitor_name(resolver: str) -> str | None:
    if not _is_monitor(resolver):
        return None
    return resolver.split(":", 1)[1].strip() or "(unnamed)"


def went_well(pack: EvidencePack, facts: ResponseFacts, rollback_deploy: DeployEvidence | None,
              detection: Detection) -> list[str]:
    """List what the response did well, with numbers from the evidence."""
    notes: list[str] = []
    onset, auto = detection.onset, detection.first_automated
    if auto is not None and onset.id and onset.at <= auto.at:
        quick = minutes_between(onset.at, auto.at)
        if quick < QUICK_ALERT_MINUTES:
            notes.append(f"Detection was automatic and quick: {auto.text} {plural(quick, 'minute')} after "
                         f"{onset.text} (evidence: {onset.id}, {auto.id}).")
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
    ended = facts.mitigation.at if facts.mitigation is not None else pack.incident.resolved_at
    since_onset = minutes_between(onset.at, ended) if ended is not None else None
    if since_onset is not None and since_onset <= SLOW_MITIGATION_MINUTES:
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
    if facts.cause is not None and facts.cause.update_id in facts.later_updates:
        notes.append(f"A follow-up after the resolution wrote the cause down (evidence: {facts.cause.update_id}).")
    elif facts.cause is not None:
        notes.append(
            f"A cause was identified and written down during the incident (evidence: {facts.cause.update_id})."
        )
    if facts.resolving_monitor:
        notes.append(f"Recovery was detected automatically by monitor {facts.resolving_monitor}.")
    return notes
