"""The built-in drafting engine: writes every postmortem section from the evidence pack, deterministically."""

from __future__ import annotations

import re
from collections.abc import Mapping

from blametrail.analysis import correlate, factors, severity, signals, timeline
from blametrail.analysis import response as resp
from blametrail.analysis.actions import CauseView, action_items
from blametrail.analysis.causes import Category
from blametrail.analysis.detection import Detection, analyse_detection
from blametrail.analysis.evidence import CommitEvidence, DeployEvidence, EvidencePack
from blametrail.analysis.response import ResponseFacts
from blametrail.analysis.severity import DEFAULT_DEFINITIONS, Definition
from blametrail.analysis.statements import phrasing, without_label
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
from blametrail.analysis.times import minutes_between, stamp, utc
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

_CUSTOMER = re.compile(
    r"\b(?:customers?|users?|errors?|latency|timeouts?|timing out|5\d\d|failing|failed|unavailable)\b", re.I
)
MAX_SUMMARY_SENTENCES = 5
MAX_IMPACT_METRICS = 2  # error and latency change points quoted in the impact


def write_postmortem(pack: EvidencePack, *, service_owners: Mapping[str, str] | None = None,
                     severity_definitions: tuple[Definition, ...] = DEFAULT_DEFINITIONS) -> dict:
    """Draft every postmortem section from the evidence, as JSON-ready data.

    `service_owners` (service → team) names the suggested owner of action items; `severity_definitions` are the
    organization's written severity levels (analysis/severity.py has the defaults).
    """
    inc = pack.incident
    facts = resp.analyse_response(pack)
    detection = analyse_detection(pack)
    suspects = rank_suspects(pack)
    top = standout(suspects)
    category = dominant_category(pack, suspects)
    rollbacks = rollback_deploys(pack)
    duration = minutes_between(inc.started_at, inc.resolved_at) if inc.resolved_at else None
    services = sorted({s.strip() for s in inc.services if s.strip()})
    rated = severity.assess(pack, duration, services, severity_definitions)
    root_cause, corroborated = _root_cause(pack, facts, suspects, top, category)
    trigger, confirmed = _trigger(pack, top, corroborated)
    confirmed_change = None
    if confirmed and trigger is not None and trigger[1] is not None:
        confirmed_change = (trigger[0], trigger[1])
    found = factors.findings(pack, facts, detection, rated, rollbacks=rollbacks, trigger=confirmed_change,
                             category=category if top is None else None)
    view = CauseView(statement=facts.cause, top=top, trigger=trigger, confirmed=confirmed,
                     category=category if top is None else None,
                     established=not root_cause.startswith(NOT_ESTABLISHED),
                     missing=tuple(missing(pack, facts, suspects)))
    return {
        "summary": _summary(pack, facts, detection, top, category, rated, duration, services, rollbacks),
        "severity": rated.severity,
        "customer_impact": {
            "description": _impact(pack),
            "duration_minutes": duration,
            "affected_services": services,
        },
        "timeline": timeline.build(pack, suspects),
        "root_cause": root_cause,
        "contributing_factors": factors.texts(found, factors.FACTOR),
        "what_went_well": resp.went_well(pack, facts, rollbacks[0] if rollbacks else None, detection),
        "what_went_poorly": factors.texts(found, factors.POORLY),
        "action_items": action_items(pack, facts, detection, found, view, services, service_owners or {}),
        "confidence": confidence(pack, facts, suspects, top, category, corroborated,
                                 severity.confidence_note(rated)),
    }


def _trigger(pack: EvidencePack, top: Suspect | None,
             corroborated: bool) -> tuple[tuple[DeployEvidence, CommitEvidence | None] | None, bool]:
    """Return the top suspect's deploy and best-matching commit, and whether the evidence confirms it."""
    if top is None:
        return None, False
    deploy = find_deploy(pack, top.deploy_id)
    if deploy is None:
        return None, False
    commit = find_commit(pack, (top.matched_commit_ids or top.commit_ids or ("",))[0])
    confirmed = corroborated or bool(top.update_ids) or link_strength(pack, top) == "strong"
    return (deploy, commit), confirmed


def _impact(pack: EvidencePack) -> str:
    """Describe the effect on customers from the description, the updates and what monitors measured."""
    inc = pack.incident
    parts = []
    if inc.description.strip():
        parts.append(f"Reported when it was opened: {clip(inc.description, 600)}")
    # why: sentences about the cause or the rollback belong to those sections, not to the impact
    quotes = [
        f"“{clip(sentence)}” (evidence: {u.id})"
        for u in resp.during(pack) for sentence in sentences(u.body)
        if _CUSTOMER.search(sentence) and not resp.is_mitigation(sentence) and phrasing(sentence) is None
    ]
    measured = signals.impact_sentences(pack)
    for m in [m for m in correlate.incident_metrics(pack) if severity.is_impact_metric(m)][:MAX_IMPACT_METRICS]:
        where = f" of {m.service}" if m.service else ""
        measured.append(f"Measured: {m.series}{where} went from {timeline.format_value(m.before, m)} to "
                        f"{timeline.format_value(m.after, m)} from {utc(m.onset):%H:%M} (evidence: {m.id}).")
    if quotes:
        parts.append("Responders reported: " + "; ".join(dict.fromkeys(quotes[:3])) + ".")
    parts.extend(measured)
    if not quotes and not measured:
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


def _summary(
    pack: EvidencePack, facts: ResponseFacts, detection: Detection, top: Suspect | None, category: Category | None,
    rated: severity.Assessment, duration: int | None, services: list[str], rollbacks: tuple[DeployEvidence, ...],
) -> str:
    """Write at most four sentences: what and when, the cause, how it ended, an inferred severity (never more than
    MAX_SUMMARY_SENTENCES); the other sections carry the details."""
    inc = pack.incident
    lead = re.sub(r"[.!?]+\s+", "; ", clip(inc.title, 200)).rstrip(".!? ")  # why: one sentence, however it is titled
    where = (f"{' and '.join([', '.join(services[:-1]), services[-1]] if len(services) > 1 else services)} "
             f"{'were' if len(services) > 1 else 'was'} affected") if services else "no affected service was recorded"
    start = utc(inc.started_at)
    if inc.resolved_at is not None and duration is not None:
        end = utc(inc.resolved_at)
        span = (f"on {start:%Y-%m-%d}, {start:%H:%M}–{end:%H:%M} UTC" if end.date() == start.date()
                else f"from {stamp(start)} to {stamp(end)}")
        said = [f"{lead}: {where} for {plural(duration, 'minute')} {span}."]
    else:
        said = [f"{lead}: {where} since {stamp(start)}, and it is not resolved yet."]
    deploy = find_deploy(pack, top.deploy_id) if top is not None else None
    if facts.cause is not None:
        quote = clip(without_label(facts.cause.sentence), 240).rstrip(".")
        said.append(f"The cause, in the responders' words: “{quote}”.")
    elif deploy is not None:
        minutes = minutes_between(deploy.deployed_at, detection.onset.at)
        said.append(f"The likely trigger is the {deploy.version} deploy of {deploy.service} at "
                    f"{utc(deploy.deployed_at):%H:%M} UTC, {plural(minutes, 'minute')} before the impact began.")
    elif category is not None:
        said.append(f"The evidence points to {category.label} as the likely cause.")
    else:
        said.append("The cause is not established yet.")
    said.append(_ending(pack, facts, rollbacks))
    if rated.recorded is None:
        said.append(f"Rated {rated.severity} by the severity definitions, as none was recorded.")
    return " ".join(s for s in said[:MAX_SUMMARY_SENTENCES] if s)


def _ending(pack: EvidencePack, facts: ResponseFacts, rollbacks: tuple[DeployEvidence, ...]) -> str:
    """Say how the incident ended: a monitor's recovery, a rollback, or who resolved it and when."""
    inc = pack.incident
    if inc.resolved_at is None:
        return ""
    at = f"{utc(inc.resolved_at):%H:%M}"
    if facts.resolving_monitor:
        how = f" after a rollback of {rollbacks[0].service} to {rollbacks[0].version}" if rollbacks else ""
        return f"Monitor {facts.resolving_monitor} saw it recover{how} and resolved it at {at}."
    who = inc.resolved_by.strip() if inc.resolved_by and inc.resolved_by.strip() else None
    closer = f"{who} resolved it at {at}" if who else f"It was resolved at {at}; the evidence does not say by whom"
    if rollbacks:
        r = rollbacks[0]
        return f"{r.service} was rolled back to {r.version} at {utc(r.deployed_at):%H:%M}, and {closer}."
    if facts.rollback is not None:
        return f"A rollback began at {utc(facts.rollback.at):%H:%M}, and {closer}."
    if facts.mitigation is not None:
        return f"The impact was mitigated at {utc(facts.mitigation.at):%H:%M}, and {closer}."
    return f"{closer}."  # why: not capitalised, a person's name is written as they write it
