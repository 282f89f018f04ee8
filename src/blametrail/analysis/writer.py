"""The built-in drafting engine: writes every postmortem section from the evidence pack, deterministically."""

from __future__ import annotations

import re

from blametrail.analysis import causes, signals, timeline
from blametrail.analysis import response as resp
from blametrail.analysis.causes import Category
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.response import ResponseFacts
from blametrail.analysis.suspects import (
    Suspect,
    describe_suspect,
    find_commit,
    find_deploy,
    names_deploy,
    rank_suspects,
    rollback_deploys,
    standout,
)
from blametrail.analysis.text import clip, plural, sentences
from blametrail.analysis.times import minutes_between, stamp
from blametrail.analysis.verdict import (
    confidence,
    dominant_category,
    link_strength,
    missing,
    ranked_causes,
    ranked_suspects,
    root_cause_category,
    scores,
    supporting,
)

__all__ = ["ENGINE_NAME", "NOT_ESTABLISHED", "ranked_causes", "ranked_suspects", "root_cause_category",
           "write_postmortem"]

ENGINE_NAME = "builtin"
NOT_ESTABLISHED = "Root cause not established from the evidence."

_TEST_FILE = re.compile(r"(?:^|/)(?:tests?|spec|__tests__)/|(?:^|/)test_[^/]*$|_test\.\w+$|\.(?:spec|test)\.\w+$")
_SEVERITY = re.compile(r"^sev[-_ ]?([1-4])$")
_SEVERITY_WORDS = {"critical": "SEV-1", "major": "SEV-2", "high": "SEV-2", "moderate": "SEV-3", "medium": "SEV-3",
                   "minor": "SEV-4", "low": "SEV-4"}
_SEV1 = re.compile(
    r"\ball (?:customers|users|traffic|regions)\b|\b(?:complete|full|total|global) outage\b|\bdata loss\b"
    r"|\b(?:site|everything) (?:is |was )?down\b",
    re.I,
)
_OUTAGE = re.compile(r"\boutages?\b|\bunavailable\b|\bunreachable\b|\bdown\b", re.I)
_NOT_OUTAGE = re.compile(  # "no outage", "narrowed it down", "scaled down" say nothing about impact
    r"\b(?:no|not an?|without an?) (?:\w+ )?outage\b|\b(?:slow\w*|narrow\w*|scal\w*|shut\w*|track\w*|wind\w*"
    r"|turn\w*|step\w*|calm\w*|settl\w*|cool\w*|pinn?\w*|writ\w*|wrote|count\w*|upside|up and) (?:it |this )?down\b",
    re.I,
)
_DEGRADED = re.compile(
    r"\bdegraded\b|\bdegradation\b|\bpartial(?:ly)?\b|\belevated\b|\bslow(?:ness|er)?\b|\blatency\b"
    r"|\bintermittent(?:ly)?\b|\bsome (?:customers|users|requests)\b",
    re.I,
)
_CUSTOMER = re.compile(
    r"\b(?:customers?|users?|errors?|latency|timeouts?|timing out|5\d\d|failing|failed|unavailable)\b", re.I
)


def write_postmortem(pack: EvidencePack) -> dict:
    """Draft every postmortem section from the evidence, as JSON-ready data."""
    inc = pack.incident
    facts = resp.analyse_response(pack)
    suspects = rank_suspects(pack)
    top = standout(suspects)
    category = dominant_category(pack, suspects)
    rollbacks = rollback_deploys(pack)
    duration = minutes_between(inc.started_at, inc.resolved_at) if inc.resolved_at else None
    services = sorted({s.strip() for s in inc.services if s.strip()})
    severity, severity_note = _severity(pack, duration, services)
    root_cause, corroborated = _root_cause(pack, facts, suspects, top, category)
    return {
        "summary": _summary(pack, facts, top, category, severity, severity_note, duration, services,
                            bool(rollbacks)),
        "severity": severity,
        "customer_impact": {
            "description": _impact(pack, duration, services),
            "duration_minutes": duration,
            "affected_services": services,
        },
        "timeline": timeline.build(pack, suspects),
        "root_cause": root_cause,
        "contributing_factors": resp.contributing_factors(pack, facts),
        "what_went_well": resp.went_well(facts, rollbacks[0] if rollbacks else None),
        "what_went_poorly": resp.went_poorly(pack, facts),
        "action_items": _action_items(pack, facts, top, category, root_cause, corroborated, services),
        "confidence": confidence(pack, facts, suspects, top, category, corroborated, severity_note),
    }


def _severity(pack: EvidencePack, duration: int | None, services: list[str]) -> tuple[str, str | None]:
    inc = pack.incident
    raw = (inc.severity or "").strip().lower()
    given = _SEVERITY.match(raw)
    if given or raw in _SEVERITY_WORDS:
        return (f"SEV-{given.group(1)}" if given else _SEVERITY_WORDS[raw]), None
    text = _NOT_OUTAGE.sub(" ", " ".join([inc.title, inc.description, *(u.body for u in pack.updates)]))
    critical, outage, degraded = _SEV1.search(text), _OUTAGE.search(text), _DEGRADED.search(text)
    minutes, count = duration or 0, len(services)
    if critical:
        severity = "SEV-1"
    elif outage and not degraded:
        severity = "SEV-1" if minutes >= 60 or count >= 3 else "SEV-2"
    elif outage:
        severity = "SEV-2"
    elif degraded:
        severity = "SEV-2" if minutes >= 120 or count >= 3 else "SEV-3"
    else:
        severity = "SEV-3" if minutes >= 30 or count >= 2 else "SEV-4"
    clues = [f"“{m.group(0).lower()}”" for m in (critical, outage, degraded) if m]
    clues.append(plural(duration, "minute") if duration is not None else "no resolution time")
    clues.append(plural(count, "affected service"))
    note = f"Severity {severity} was inferred from the impact ({', '.join(clues)}) because none was set."
    return severity, note


def _impact(pack: EvidencePack, duration: int | None, services: list[str]) -> str:
    inc = pack.incident
    span = f"for {plural(duration, 'minute')}" if duration is not None else "with no resolution time recorded"
    where = f"affected {', '.join(services)}" if services else "recorded no affected services"
    parts = [f"The incident “{clip(inc.title, 200)}” {where} {span}."]
    if inc.description.strip():
        parts.append(f"Reported: {clip(inc.description, 600)}")
    quotes = [
        f"“{clip(sentence)}” (evidence: {u.id})"
        for u in resp.sorted_updates(pack) for sentence in sentences(u.body) if _CUSTOMER.search(sentence)
    ]
    measured = signals.impact_sentences(pack)
    parts.extend(measured)
    if quotes:
        parts.append("Updates on the impact: " + "; ".join(dict.fromkeys(quotes[:3])) + ".")
    elif not measured:
        parts.append("No update described the effect on customers, so its extent is not established.")
    return " ".join(parts)


def _root_cause(
    pack: EvidencePack, facts: ResponseFacts, suspects: tuple[Suspect, ...], top: Suspect | None,
    category: Category | None,
) -> tuple[str, bool]:
    cause, parts, corroborated = facts.cause, [], False
    if cause is not None:
        quote = clip(cause.sentence)
        verb = "states" if facts.cause_is_explicit else "explains"
        parts.append(f"An update at {stamp(cause.at)} {verb}: “{quote}” (evidence: {cause.update_id}).")
    if top is not None:
        text, cited = describe_suspect(pack, top)
        cites = f"(evidence: {', '.join(cited)})"
        deploy = find_deploy(pack, top.deploy_id)
        if cause is not None and deploy is not None:
            corroborated = cause.update_id in top.update_ids or names_deploy(cause.sentence, deploy)
            parts.append(f"This agrees with the top suspect, {text} {cites}." if corroborated else
                         f"The top suspect is {text} {cites}, but the updates do not tie it to the stated cause.")
        else:
            parts.append(f"The most likely trigger is {text} {cites}. Signals: {'; '.join(top.reasons)}.")
            if not top.update_ids and link_strength(pack, top) == "strong":
                parts.append("No update confirms it, but the errors point into its changes.")
            elif not top.update_ids:
                parts.append("No update confirms it, so this is a correlation in time and scope, "
                             "not an established cause.")
        backing = supporting(pack, top.evidence_ids)
        if backing:
            parts.append(f"Supporting signals: {'; '.join(backing)}.")
    elif category is not None:
        backing = supporting(pack, (*category.metric_ids, *category.log_ids))
        parts.append(f"The evidence points to {category.label} as the likely cause: "
                     f"{'; '.join(backing or category.reasons)}.")
        parts.append("No deploy of the affected services explains these errors"
                     + (f" ({scores(suspects)})." if suspects else "."))
    if parts:
        return " ".join(parts), corroborated
    return f"{NOT_ESTABLISHED} Missing: {'; '.join(missing(pack, facts, suspects))}.", False


def _action_items(
    pack: EvidencePack, facts: ResponseFacts, top: Suspect | None, category: Category | None, root_cause: str,
    corroborated: bool, services: list[str],
) -> list[dict]:
    owner = facts.process_owner
    items: list[tuple[str, str, str | None]] = []
    if top is not None:
        deploy = find_deploy(pack, top.deploy_id)
        commit = find_commit(pack, (top.matched_commit_ids or top.commit_ids or ("",))[0])
        if commit is not None and deploy is not None:
            sha, author = commit.sha[:7], commit.author
            confirmed = corroborated or bool(top.update_ids)
            title = (f"Fix the problem introduced in commit {sha} before redeploying {deploy.service}" if confirmed
                     else f"Confirm whether the change in commit {sha} triggered the incident")
            items.append((title, "high", author))
            for path in [p for p in commit.files if not _TEST_FILE.search(p)][:2]:
                items.append((f"Add a regression test covering {path}", "high", author))
            if not commit.files:
                items.append((f"Add a regression test for the change in commit {sha}", "high", author))
    if category is not None and top is None:
        items.append((causes.action(category.key), "high", owner))
        items.append((f"Confirm that {category.label} caused the incident and document it", "medium", owner))
    if root_cause.startswith(NOT_ESTABLISHED):
        items.append(("Investigate and document the root cause", "high", owner))
    elif facts.cause is not None and not corroborated:
        items.append(("Confirm the stated root cause and link the change that introduced it", "medium", owner))
    detected = facts.minutes_to_detection
    if detected is not None and detected >= resp.SLOW_DETECTION_MINUTES:
        scope = ", ".join(services) if services else "this failure"
        items.append((f"Improve alerting to detect {scope} impact sooner (it began {plural(detected, 'minute')} "
                      "before the incident was acknowledged)", "medium", owner))
    if facts.update_count == 0:
        items.append(("Post updates to the incident timeline while responding", "medium", owner))
    first = facts.minutes_to_first_update
    if first is not None and first > resp.SLOW_FIRST_UPDATE_MINUTES:
        items.append((f"Post the first incident update within {resp.SLOW_FIRST_UPDATE_MINUTES} minutes "
                      f"(this time it took {first})", "low", owner))
    gap = facts.longest_gap_minutes
    if gap is not None and gap > resp.LONG_GAP_MINUTES:
        items.append((f"Post incident updates at least every {resp.LONG_GAP_MINUTES} minutes "
                      f"(the longest gap was {gap})", "low", owner))
    if facts.failed_attempts:
        items.append(("Record in the runbook which remediation steps worked and which did not", "low", owner))
    unique: dict[str, tuple[str, str, str | None]] = {}
    for item in items:
        unique.setdefault(item[0].lower(), item)
    return [{"title": clip(t, 1000), "priority": p, "suggested_owner": clip(w, 200) if w else None}
            for t, p, w in unique.values()]


def _summary(
    pack: EvidencePack, facts: ResponseFacts, top: Suspect | None, category: Category | None, severity: str,
    severity_note: str | None, duration: int | None, services: list[str], rolled_back: bool,
) -> str:
    inc = pack.incident
    text = f"The incident “{clip(inc.title, 200)}” started at {stamp(inc.started_at)}"
    if inc.resolved_at is not None and duration is not None:
        text += f" and was resolved at {stamp(inc.resolved_at)}, after {plural(duration, 'minute')}"
    else:
        text += " and has no resolution time in the evidence"
    text += f", affecting {', '.join(services)}." if services else "; no affected services were recorded."
    if facts.cause is not None:
        text += f" Updates state the cause: “{clip(facts.cause.sentence).rstrip('.')}”."
    elif top is not None:
        description, _ = describe_suspect(pack, top)
        text += f" The likely trigger is {description}."
    elif category is not None:
        text += f" The evidence points to {category.label} as the likely cause."
    else:
        text += " The root cause is not established from the evidence."
    after = " after a rollback" if facts.rollback is not None or rolled_back else ""
    if facts.resolving_monitor:
        text += f" It was resolved automatically{after} when monitor {facts.resolving_monitor} recovered."
    elif inc.resolved_by:
        text += f" It was resolved by {inc.resolved_by.strip()}{after}."
    elif inc.resolved_at is not None:
        text += f" It was resolved{after}; the evidence does not record by whom."
    text += f" Severity: {severity}" + (" (inferred from the impact)." if severity_note else ".")
    return text
