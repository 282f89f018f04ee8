"""What went poorly and the contributing factors, each a rule over the evidence with a named threshold and a citation.

What went poorly (the response): no updates, a slow first update, long gaps between updates, slow mitigation, a slow
rollback, attempts that did not help, detection that relied on a person (or monitors that stayed silent), a
recorded severity below its definition, no resolution time.
Contributing factors (conditions that let the incident grow or last): impact that went unnoticed, alerts that fired
late, a foreseeable cause nothing warned of (an expiring certificate, growing memory), a repeat of a recent incident
on the same service, flapping monitors or alerts, a failure that spread to other services, and a triggering change
that shipped without any test change.
Every finding cites the evidence it rests on; one fact appears in one section only. docs/analysis.md lists the
rules and thresholds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from blametrail.analysis import correlate
from blametrail.analysis.causes import Category
from blametrail.analysis.detection import Detection, Signal
from blametrail.analysis.evidence import CommitEvidence, DeployEvidence, EvidencePack, PriorIncident
from blametrail.analysis.observations import MetricEvidence
from blametrail.analysis.response import (
    LONG_GAP_MINUTES,
    SLOW_FIRST_UPDATE_MINUTES,
    SLOW_MITIGATION_MINUTES,
    ResponseFacts,
)
from blametrail.analysis.severity import Assessment, is_impact_metric
from blametrail.analysis.text import clip, plural
from blametrail.analysis.times import minutes_between, utc

# SLOW_FIRST_UPDATE_MINUTES, LONG_GAP_MINUTES and SLOW_MITIGATION_MINUTES live in response.py (what went well uses them)
SLOW_ROLLBACK_MINUTES = 15  # from the first rollback step to recovery
SLOW_DETECTION_MINUTES = 5  # impact this long before a person noticed
LATE_ALERT_MINUTES = 5  # an alert or monitor firing this long after the impact began
REPEAT_WINDOW = timedelta(days=30)  # an earlier incident on the same service this recent makes this one a repeat
SPREAD_MINUTES = 2  # a change point on another service this long after the first one counts as spreading
MAX_FAILED_ATTEMPTS = 3

POORLY, FACTOR = "poorly", "factor"
TEST_FILE = re.compile(r"(?:^|/)(?:tests?|spec|__tests__)/|(?:^|/)test_[^/]*$|_test\.\w+$|\.(?:spec|test)\.\w+$"
                       r"|Tests?\.\w+$")
_NOT_CODE = re.compile(r"(?:^|/)(?:readme|changelog|license|docs?/)|\.(?:md|rst|txt|adoc|png|svg|jpg)$", re.I)


@dataclass(frozen=True)
class Finding:
    """One thing the evidence shows about the response or its conditions, in the section it belongs to."""

    rule: str  # e.g. "slow_first_update"; docs/analysis.md lists them
    section: str  # POORLY | FACTOR
    text: str  # one or two sentences ending with their citation
    evidence: tuple[str, ...]
    service: str | None = None
    minutes: int | None = None


def _cite(ids) -> str:
    ids = [i for i in dict.fromkeys(ids) if i]
    return f" (evidence: {', '.join(ids)})" if ids else ""


def _hm(at: datetime) -> str:
    return f"{utc(at):%H:%M}"


def _when(signal: Signal) -> str:
    return f"{signal.text} at {_hm(signal.at)}"


def findings(
    pack: EvidencePack, facts: ResponseFacts, detection: Detection, severity: Assessment, *,
    trigger: tuple[DeployEvidence, CommitEvidence] | None = None, rollbacks: tuple[DeployEvidence, ...] = (),
    category: Category | None = None,
) -> list[Finding]:
    """Apply every rule; `trigger` is the confirmed triggering deploy and commit, `category` the named cause category."""
    out: list[Finding] = []
    out += _response(pack, facts, detection)
    out += _detection(pack, detection)
    out += _mitigation(pack, facts, detection, rollbacks)
    below = severity_finding(severity)
    if below is not None:
        out.append(below)
    if pack.incident.resolved_at is None:
        out.append(Finding("no_resolution", POORLY,
                           "No resolution time is recorded, so the duration is unknown.", ()))
    out += _repeats(pack)
    out += [Finding("flapping", FACTOR, f"{flap.what[:1].upper()}{flap.what[1:]} flapped, failing {flap.cycles} "
                    f"times between {_hm(flap.first)} and {_hm(flap.last)}, which made the state hard to read"
                    f"{_cite(flap.ids)}.", flap.ids) for flap in detection.flapping]
    for extra in (_spread(pack), _no_early_warning(pack, detection, category)):
        if extra is not None:
            out.append(extra)
    if trigger is not None:
        untested = _untested(*trigger)
        if untested is not None:
            out.append(untested)
    return out


def severity_finding(severity: Assessment) -> Finding | None:
    """Return the finding for a recorded severity below the level its written definition gives, if it is."""
    if severity.gap <= 0:
        return None
    return Finding("severity_below_definition", POORLY,
                   f"It was recorded as {severity.recorded}, but by the written definitions it is {severity.inferred}: "
                   f"{severity.why()}. The recorded severity was kept.", severity.evidence)


def _response(pack: EvidencePack, facts: ResponseFacts, detection: Detection) -> list[Finding]:
    out = []
    if facts.update_count == 0:
        ids = [s.id for s in pack.status_changes][:2]
        out.append(Finding("no_updates", POORLY, "Nobody posted an update while it was open, so the record does not "
                           f"show what was tried, or when{_cite(ids)}.", tuple(ids)))
    first = facts.minutes_to_first_update
    if first is not None and first > SLOW_FIRST_UPDATE_MINUTES:
        out.append(Finding("slow_first_update", POORLY, f"The first update came {plural(first, 'minute')} after "
                           f"the start{_cite([facts.first_update_id])}.", (facts.first_update_id or "",),
                           minutes=first))
    gap = facts.longest_gap_minutes
    if gap is not None and gap > LONG_GAP_MINUTES and facts.longest_gap_ids:
        a, b = facts.longest_gap_ids
        at = {u.id: u.at for u in pack.updates}
        out.append(Finding("long_gap", POORLY, f"There was no update for {plural(gap, 'minute')}, from "
                           f"{_hm(at[a])} to {_hm(at[b])}{_cite([a, b])}.", (a, b), minutes=gap))
    for attempt in facts.failed_attempts[:MAX_FAILED_ATTEMPTS]:
        out.append(Finding("failed_attempt", POORLY, f"An attempt did not help: “{clip(attempt.sentence, 200)}”"
                           f"{_cite([attempt.update_id])}.", (attempt.update_id,)))
    return out


def _detection(pack: EvidencePack, detection: Detection) -> list[Finding]:
    out = []
    onset, human, auto = detection.onset, detection.first_human, detection.first_automated
    services = ", ".join(sorted({s for s in pack.incident.services if s.strip()})) or "the affected service"
    opener = detection.opened if detection.opened is not None and detection.opened_by_person else human
    if detection.silent_monitors and auto is None and opener is not None:
        watched = {m.name: m.service for m in pack.monitors}
        named = [f"{name} ({watched[name]})" if watched.get(name) else name for name in detection.silent_monitors]
        text = (f"Monitor {detection.silent_monitors[0]} watches {watched.get(detection.silent_monitors[0]) or services}"
                if len(named) == 1 else f"Monitors {listing(named)} watch these services")
        out.append(Finding("silent_monitor", POORLY, f"{text} but reported nothing; {_when(opener)}"
                           f"{_cite([opener.id])}.", (opener.id or "",),
                           service=watched.get(detection.silent_monitors[0]) or None))
    elif auto is None and opener is not None:
        who = "a person" if opener.kind == "update" else _opener_name(opener)
        mention = alert_mention(pack)
        if mention is not None:
            where = f"{mention[0]} mentions one" if mention[0] != "the description" else "the description mentions one"
            text = (f"No alert or monitor event is on record, though {where}; {who} opened the incident by hand"
                    f"{_cite([opener.id, mention[1]])}.")
        else:
            text = f"No alert or monitor reported it; {who} opened it by hand{_cite([opener.id])}."
        out.append(Finding("no_alert", POORLY, text, (opener.id or "", mention[1] if mention else "")))
    if human is not None and (auto is None or human.at <= auto.at):
        late = minutes_between(onset.at, human.at)
        if late >= SLOW_DETECTION_MINUTES and onset.at < human.at:
            out.append(Finding("slow_detection", FACTOR, f"The impact went unnoticed for {plural(late, 'minute')}: "
                               f"{_when(onset)}, and {_when(human)}{_cite([onset.id, human.id])}.",
                               (onset.id or "", human.id or ""), minutes=late))
    if auto is not None:
        late = minutes_between(onset.at, auto.at)
        if late >= LATE_ALERT_MINUTES and onset.at < auto.at:
            after_people = ""
            if human is not None and human.at < auto.at:
                after_people = f", {plural(minutes_between(human.at, auto.at), 'minute')} after {_when(human)}"
            out.append(Finding("late_alert", FACTOR, f"The {auto.text.split(' ', 1)[0]} fired late: {_when(auto)}, "
                               f"{plural(late, 'minute')} after {_when(onset)}{after_people}"
                               f"{_cite([onset.id, auto.id, human.id if after_people and human else None])}.",
                               (onset.id or "", auto.id or ""), minutes=late))
    return out


def rollback_span(pack: EvidencePack, facts: ResponseFacts,
                  rollbacks: tuple[DeployEvidence, ...]) -> tuple[datetime, str, datetime, str | None] | None:
    """Return (start, its id, end, its id) of the rollback: first rollback step to recovery, or None."""
    steps = []
    if facts.rollback is not None:
        steps.append((utc(facts.rollback.at), facts.rollback.update_id))
    steps += [(utc(d.deployed_at), d.id) for d in rollbacks]
    if not steps:
        return None
    start, start_id = min(steps)
    ends = []
    if facts.mitigation is not None and utc(facts.mitigation.at) >= start:
        ends.append((utc(facts.mitigation.at), facts.mitigation.update_id))
    ends += [(utc(m.at), m.id) for m in pack.monitor_events if m.state == "up" and utc(m.at) >= start]
    if pack.incident.resolved_at is not None:
        resolved = next((s.id for s in pack.status_changes if s.status.strip().lower() in ("resolved", "closed")),
                        None)
        ends.append((utc(pack.incident.resolved_at), resolved))
    if not ends:
        return None
    end, end_id = min(ends, key=lambda e: e[0])
    return start, start_id, end, end_id


_ALERT_WORDS = re.compile(r"\balert(?:s|ed|ing)?\b|\bpaged\b|\bpager\b|\bpagerduty\b|\bopsgenie\b", re.I)


def alert_mention(pack: EvidencePack) -> tuple[str, str | None] | None:
    """Return (where, update id) of the first text that mentions an alert or a page, when none is on record."""
    if pack.alerts:
        return None
    if _ALERT_WORDS.search(pack.incident.description or ""):
        return "the description", None
    end = pack.incident.resolved_at
    for u in sorted(pack.updates, key=lambda u: (utc(u.at), u.id)):
        if (end is None or utc(u.at) <= utc(end)) and _ALERT_WORDS.search(u.body):
            return u.id, u.id
    return None


def _opener_name(opener: Signal) -> str:
    """Return who opened the incident, from the opening's phrase ("the incident was opened by kim" → "kim")."""
    _, _, name = opener.text.partition(" opened by ")
    return name or "a person"


def _mitigation(pack: EvidencePack, facts: ResponseFacts, detection: Detection,
                rollbacks: tuple[DeployEvidence, ...]) -> list[Finding]:
    out = []
    onset = detection.onset
    if facts.mitigation is not None:
        mitigated_at, mitigated_id, how = utc(facts.mitigation.at), facts.mitigation.update_id, "it was mitigated"
    elif pack.incident.resolved_at is not None:
        mitigated_at = utc(pack.incident.resolved_at)
        mitigated_id = next((s.id for s in pack.status_changes if s.status.strip().lower() in ("resolved", "closed")),
                            None)
        how = "it was resolved"
    else:
        mitigated_at = None
    if mitigated_at is not None:
        minutes = minutes_between(onset.at, mitigated_at)
        if minutes > SLOW_MITIGATION_MINUTES:
            since = f"when {_when(onset)}" if onset.id else f"the start at {_hm(onset.at)}"
            out.append(Finding("slow_mitigation", POORLY, f"The impact lasted {plural(minutes, 'minute')} before "
                               f"{how}, counted from {since}{_cite([onset.id, mitigated_id])}.",
                               (onset.id or "", mitigated_id or ""), minutes=minutes))
    span = rollback_span(pack, facts, rollbacks)
    if span is not None:
        start, start_id, end, end_id = span
        minutes = minutes_between(start, end)
        if minutes > SLOW_ROLLBACK_MINUTES:
            service = rollbacks[0].service if rollbacks else None
            out.append(Finding("slow_rollback", POORLY, f"The rollback took {plural(minutes, 'minute')}, from its "
                               f"first step at {_hm(start)} to recovery at {_hm(end)}{_cite([start_id, end_id])}.",
                               (start_id, end_id or ""), service=service, minutes=minutes))
    return out


def recent_priors(pack: EvidencePack) -> list[PriorIncident]:
    """Return earlier incidents on the same services that started within REPEAT_WINDOW before this one."""
    start = utc(pack.incident.started_at)
    services = {s for s in pack.incident.services if s.strip()}
    return [p for p in pack.prior_incidents
            if utc(p.started_at) < start and start - utc(p.started_at) <= REPEAT_WINDOW and services & set(p.services)]


def ago(earlier: datetime, later: datetime) -> str:
    """Say how long before, e.g. "5 days", "3 hours"."""
    delta = utc(later) - utc(earlier)
    if delta >= timedelta(days=1):
        return plural(delta.days, "day")
    hours = int(delta.total_seconds() // 3600)
    return plural(hours, "hour") if hours else plural(max(1, int(delta.total_seconds() // 60)), "minute")


RESEMBLES_SCORE = 0.35  # a prior incident this alike, for more than its service and words, is named as resembling


def _resemblance(pack: EvidencePack) -> Finding | None:
    """The earlier incident this one most resembles beyond sharing a service, with what matched."""
    start = utc(pack.incident.started_at)
    alike = [p for p in pack.prior_incidents if p.score is not None and p.score >= RESEMBLES_SCORE
             and utc(p.started_at) < start
             and any(not r.startswith(("same service", "similar title")) for r in p.reasons)]
    if not alike:
        return None
    best = max(alike, key=lambda p: (p.score, p.started_at))
    number = best.id.rpartition("_")[2]
    text = (f"This resembles #{number} of {utc(best.started_at):%-d %b %Y} (“{clip(best.title, 120)}”): "
            f"{'; '.join(best.reasons[:4])}{_cite([best.id])}.")
    return Finding("repeat", FACTOR, text, (best.id,), service=(best.services or (None,))[0])


def _repeats(pack: EvidencePack) -> list[Finding]:
    resembles = _resemblance(pack)
    if resembles is not None:
        return [resembles]
    priors = recent_priors(pack)
    if not priors:
        return []
    services = {s for s in pack.incident.services if s.strip()}
    shared = sorted(services & {s for p in priors for s in p.services})
    named = ", ".join(f"“{clip(p.title, 120)}”, {ago(p.started_at, pack.incident.started_at)} earlier"
                      for p in priors[:3])
    if len(priors) == 1:
        text = f"This is a repeat on {', '.join(shared)}: {named}{_cite([priors[0].id])}."
    else:
        text = (f"{', '.join(shared)} had {plural(len(priors), 'other incident')} in the "
                f"{REPEAT_WINDOW.days} days before: {named}{_cite(p.id for p in priors[:3])}.")
    return [Finding("repeat", FACTOR, text, tuple(p.id for p in priors[:3]), service=shared[0])]


def _spread(pack: EvidencePack) -> Finding | None:
    first: dict[str, MetricEvidence] = {}
    end = utc(pack.incident.resolved_at) if pack.incident.resolved_at else None
    for metric in correlate.incident_metrics(pack):
        # why: only impact (errors, latency) spreads; a traffic shift or a gauge moving elsewhere is not the failure
        if metric.service and metric.service not in first and is_impact_metric(metric) and (
                end is None or utc(metric.onset) <= end):
            first[metric.service] = metric
    if len(first) < 2:
        return None
    ordered = sorted(first.values(), key=lambda m: (utc(m.onset), m.id))
    origin = ordered[0]
    later = [m for m in ordered[1:] if minutes_between(origin.onset, m.onset) >= SPREAD_MINUTES]
    if not later:
        return None

    def where(m: MetricEvidence) -> str:
        return f"{m.service} ({m.series} {'rose' if m.direction == 'up' else 'fell'} at {_hm(m.onset)})"

    ids = [origin.id, *(m.id for m in later[:3])]
    return Finding("spread", FACTOR, f"The failure spread from {where(origin)} to "
                   f"{', '.join(where(m) for m in later[:3])}{_cite(ids)}.", tuple(ids), service=origin.service)


def code_files(commit: CommitEvidence) -> list[str]:
    """Return the files a commit changed that are code or configuration (not tests or docs)."""
    return [p for p in commit.files if not TEST_FILE.search(p) and not _NOT_CODE.search(p)]


def listing(items: list[str], limit: int = 3) -> str:
    """Join names in prose: "a", "a and b", "a, b and 2 more"."""
    shown = items[:limit]
    more = len(items) - len(shown)
    if more:
        return f"{', '.join(shown)} and {more} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _untested(deploy: DeployEvidence, commit: CommitEvidence) -> Finding | None:
    changed = code_files(commit)
    if not changed or any(TEST_FILE.search(p) for c in deploy.commits for p in c.files):
        return None
    message = clip(commit.message.splitlines()[0] if commit.message.strip() else "no message", 120)
    return Finding("untested_change", FACTOR, f"The triggering change, commit {commit.sha[:7]} (“{message}”), "
                   f"reached production in {deploy.service} {deploy.version} without any test change; it touched "
                   f"{listing(changed)}{_cite([deploy.id, commit.id])}.", (deploy.id, commit.id),
                   service=deploy.service)


# Causes that give notice before they hurt: (category key, what happened, the signal that could have warned).
_FORESEEABLE = {"certificate": ("the certificate expired", "expiry alert"),
                "memory": ("memory ran out", "alert on memory growth")}


def _no_early_warning(pack: EvidencePack, detection: Detection, category: Category | None) -> Finding | None:
    """Return a factor for a foreseeable cause (an expiring certificate, growing memory) that nothing warned of."""
    if category is None or category.key not in _FORESEEABLE:
        return None
    first_sign = detection.onset
    early = [s for s in (*pack.alerts, *pack.monitor_events) if utc(s.at) <= first_sign.at]
    if early or not first_sign.id:
        return None
    what, warning = _FORESEEABLE[category.key]
    ids = [first_sign.id, *category.log_ids[:1], *category.metric_ids[:1]]
    return Finding("no_early_warning", FACTOR, f"Nothing warned before {what}: the first sign was that "
                   f"{_when(first_sign)}, with no {warning} before it{_cite(ids)}.", tuple(ids))


def texts(found: list[Finding], section: str) -> list[str]:
    """Return the findings' sentences for one section, in rule order."""
    return [f.text for f in found if f.section == section]
