"""Action items: specific follow-ups grouped as detect, mitigate and prevent, each with the evidence behind it.

An item names the service, signal, change or step it is about; none is filed without evidence that motivates it.
The suggested owner is the team that owns the item's service (the organization's `service_owners`), or the one team
owning every affected service, else nobody: never a commit's author or a responder (blameless by construction).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from blametrail.analysis import causes, correlate
from blametrail.analysis.causes import Category
from blametrail.analysis.detection import Detection
from blametrail.analysis.evidence import CommitEvidence, DeployEvidence, EvidencePack
from blametrail.analysis.factors import (
    LONG_GAP_MINUTES,
    SLOW_FIRST_UPDATE_MINUTES,
    Finding,
    alert_mention,
    code_files,
    recent_priors,
)
from blametrail.analysis.logs import headline
from blametrail.analysis.observations import LogEvidence
from blametrail.analysis.response import ResponseFacts
from blametrail.analysis.severity import is_impact_metric
from blametrail.analysis.statements import CauseStatement, without_label
from blametrail.analysis.suspects import Suspect
from blametrail.analysis.text import clip, plural, sentences
from blametrail.analysis.timeline import format_value
from blametrail.analysis.times import minutes_between, utc

KINDS = ("detect", "mitigate", "prevent")
# words that make a sentence a description of the impact (the symptom people saw)
IMPACT_WORDS = re.compile(
    r"\b(?:customers?|users?|errors?|latency|timeouts?|timing out|5\d\ds?|5xx|failing|fail(?:s|ed)?|unavailable"
    r"|down|slow|outage|degraded)\b", re.I)
AUTO_ROLLBACK_MINUTES = 10  # a metric change this soon after the triggering deploy could drive an automatic rollback
_PRIORITY = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Action:
    """A follow-up: what to do, which kind, how urgent, the evidence that motivates it, and its service."""

    title: str
    kind: str  # detect | mitigate | prevent
    priority: str  # high | medium | low
    evidence: tuple[str, ...]
    service: str | None = None


@dataclass(frozen=True)
class CauseView:
    """What the draft says caused the incident, as the action items need it."""

    statement: CauseStatement | None
    top: Suspect | None
    trigger: tuple[DeployEvidence, CommitEvidence | None] | None  # the top suspect's deploy and best-matching commit
    confirmed: bool  # an update states or names the trigger, or the errors point into its changes
    category: Category | None
    established: bool
    missing: tuple[str, ...] = ()


def owner_for(service: str | None, services: list[str], owners: Mapping[str, str]) -> str | None:
    """Return the team owning a service, or the one team owning every affected service, else None."""
    if service and owners.get(service):
        return owners[service].strip() or None
    teams = {owners.get(s, "").strip() for s in services}
    if services and len(teams) == 1 and "" not in teams:
        return teams.pop()
    return None


def action_items(pack: EvidencePack, facts: ResponseFacts, detection: Detection, found: list[Finding],
                 cause: CauseView, services: list[str], owners: Mapping[str, str]) -> list[dict]:
    """Return the action items, grouped detect → mitigate → prevent, most urgent first within each group."""
    primary = services[0] if len(services) == 1 else None
    items: list[Action] = []
    focus = cause.trigger[0].service if cause.trigger is not None else None
    items += _detect(pack, detection, found, primary, services, focus)
    items += _mitigate(pack, facts, found, cause, primary)
    items += _prevent(pack, cause, primary)
    unique: dict[str, Action] = {}
    for item in items:
        unique.setdefault(item.title.lower(), item)
    ordered = sorted(unique.values(), key=lambda a: (KINDS.index(a.kind), _PRIORITY[a.priority]))
    return [{"title": clip(a.title, 1000), "priority": a.priority,
             "suggested_owner": owner_for(a.service, services, owners), "kind": a.kind,
             "evidence": [e for e in dict.fromkeys(a.evidence) if e][:50]} for a in ordered]


def _by_rule(found: list[Finding], rule: str) -> list[Finding]:
    return [f for f in found if f.rule == rule]


def _detect(pack: EvidencePack, detection: Detection, found: list[Finding], primary: str | None,
            services: list[str], focus: str | None) -> list[Action]:
    out = []
    onset_metric = correlate.onset_metric(pack)
    floor = utc(pack.incident.started_at) - correlate.ONSET_LOOKBACK
    # why: alert on what customers feel (errors, latency) before whatever gauge happened to move first
    impact = [m for m in correlate.incident_metrics(pack) if is_impact_metric(m) and utc(m.onset) >= floor]
    onset_metric = impact[0] if impact else onset_metric
    burst = correlate.onset_log(pack)
    for f in _by_rule(found, "no_alert"):
        mention = alert_mention(pack)
        if mention is not None:
            where = "the description" if mention[1] is None else mention[1]
            scope = primary or "the affected services"
            out.append(Action(f"Send the alerts for {scope} to the incident (an alert webhook): {where} mentions an "
                              "alert, but none is on record", "detect", "medium", f.evidence, primary))
        elif onset_metric is not None:
            m = onset_metric
            where = f" of {m.service}" if m.service else ""
            out.append(Action(
                f"Alert on {m.series}{where}: it went from {format_value(m.before, m)} to "
                f"{format_value(m.after, m)} at {utc(m.onset):%H:%M} and no alert fired", "detect", "high",
                (m.id, *f.evidence), m.service or primary))
        elif burst is not None:
            where = f" in {burst.service}" if burst.service else ""
            out.append(Action(f"Alert on new errors like “{clip(error_headline(burst), 100)}”{where}; no alert "
                              "fired for this incident", "detect", "high", (burst.id, *f.evidence),
                              burst.service or primary))
        else:
            report = _first_impact_report(pack)
            service = _named_service(report[1], services, focus) if report else None
            service = service or primary
            scope = service or "the affected services"
            if report is not None:
                out.append(Action(f"Add an alert or monitor on {scope} for the symptom people reported first: "
                                  f"“{clip(report[1], 140)}”", "detect", "high", (*f.evidence, report[0]), service))
            else:
                out.append(Action(f"Add an alert or monitor on {scope}, so the next failure does not wait for a "
                                  "person to notice it", "detect", "high", f.evidence, service))
    for f in _by_rule(found, "silent_monitor"):
        names = ", ".join(detection.silent_monitors)
        out.append(Action(f"Find out why monitor{'s' if len(detection.silent_monitors) > 1 else ''} {names} did not "
                          "fire during this incident, and fix its check or threshold", "detect", "high", f.evidence,
                          f.service or primary))
    for f in _by_rule(found, "late_alert"):
        auto = detection.first_automated
        if auto is not None:
            out.append(Action(f"Make the {auto.text.removesuffix(' fired').removesuffix(' reported it down')} "
                              f"fire sooner: it fired {plural(f.minutes or 0, 'minute')} after the impact began",
                              "detect", "medium", f.evidence, primary))
    for flap in detection.flapping:
        out.append(Action(f"Stop {flap.what} from flapping ({flap.cycles} failures during the incident): add a "
                          "recovery delay or fix its threshold", "detect", "low", flap.ids, primary))
    return out


def _first_impact_report(pack: EvidencePack) -> tuple[str, str] | None:
    """Return (update id, sentence) of the first sentence posted during the incident that describes the impact."""
    end = pack.incident.resolved_at
    updates = sorted((u for u in pack.updates if end is None or utc(u.at) <= utc(end)), key=lambda u: (utc(u.at), u.id))
    for update in updates:
        for sentence in sentences(update.body):
            if IMPACT_WORDS.search(sentence):
                return update.id, sentence
    return None


def _named_service(text: str, services: list[str], focus: str | None) -> str | None:
    """Return the affected service a text names: the only one, or the one the cause points at, else None."""
    named = [s for s in services if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text, re.I)]
    if len(named) == 1:
        return named[0]
    return focus if focus in named else None


def _mitigate(pack: EvidencePack, facts: ResponseFacts, found: list[Finding], cause: CauseView,
              primary: str | None) -> list[Action]:
    out = []
    for f in _by_rule(found, "slow_rollback"):
        service = f.service or primary
        out.append(Action(f"Make rolling back {service or 'a deploy'} faster: this time it took "
                          f"{plural(f.minutes or 0, 'minute')} from the first step to recovery", "mitigate",
                          "medium", f.evidence, service))
    if cause.trigger is not None and cause.confirmed:
        deploy, _ = cause.trigger
        following = correlate.next_onset(pack, deploy.deployed_at)
        if following is not None and minutes_between(deploy.deployed_at, following.onset) <= AUTO_ROLLBACK_MINUTES:
            minutes = minutes_between(deploy.deployed_at, following.onset)
            out.append(Action(f"Roll {deploy.service} back automatically when {following.series} moves right after "
                              f"a deploy: it changed {plural(minutes, 'minute')} after {deploy.version}", "mitigate",
                              "medium", (deploy.id, following.id), deploy.service))
    for f in _by_rule(found, "slow_mitigation"):
        if facts.mitigation is not None:
            out.append(Action(f"Put the step that ended the impact in the runbook so it comes sooner next time: "
                              f"“{clip(facts.mitigation.sentence, 160)}”", "mitigate", "medium", f.evidence,
                              primary))
    for f in _by_rule(found, "failed_attempt"):
        attempt = next(m for m in facts.failed_attempts if m.update_id in f.evidence)
        out.append(Action(f"Note in the runbook that this did not help: “{clip(attempt.sentence, 160)}”",
                          "mitigate", "low", f.evidence, primary))
    for f in _by_rule(found, "slow_first_update"):
        out.append(Action(f"Post the first update within {SLOW_FIRST_UPDATE_MINUTES} minutes of the start (this "
                          f"time: {f.minutes})", "mitigate", "low", f.evidence, primary))
    for f in _by_rule(found, "long_gap"):
        out.append(Action(f"Post updates at least every {LONG_GAP_MINUTES} minutes while the impact lasts (the "
                          f"longest gap: {f.minutes} minutes)", "mitigate", "low", f.evidence, primary))
    for f in _by_rule(found, "no_updates"):
        out.append(Action("Post updates to the incident while responding, so the next review can follow the "
                          "response", "mitigate", "low", f.evidence, primary))
    return out


def _prevent(pack: EvidencePack, cause: CauseView, primary: str | None) -> list[Action]:
    out = []
    statement = cause.statement
    quoted = f"“{clip(without_label(statement.sentence), 160).rstrip('.')}”" if statement is not None else ""
    if cause.trigger is not None:
        deploy, commit = cause.trigger
        ids = (deploy.id, commit.id if commit else "", statement.update_id if statement else "")
        if commit is not None:
            message = clip(commit.message.splitlines()[0] if commit.message.strip() else "no message", 100)
            change = f"commit {commit.sha[:7]} (“{message}”)"
        else:
            change = f"the {deploy.version} deploy"
        if cause.confirmed:
            out.append(Action(f"Rework {change} before it goes back into {deploy.service}", "prevent", "high", ids,
                              deploy.service))
        else:
            out.append(Action(f"Confirm whether {change} in {deploy.service} {deploy.version} triggered the "
                              "incident", "prevent", "high", ids, deploy.service))
        test = _test_item(pack, cause, deploy, commit) if commit is not None else None
        if test is not None:
            out.append(test)
    elif statement is not None:
        out.append(Action(f"Remove the stated cause, {quoted}, and link the change that introduced it", "prevent",
                          "high", (statement.update_id,), primary))
    if cause.category is not None and cause.trigger is None:
        kind = causes.action_kind(cause.category.key)
        out.append(Action(causes.action(cause.category.key), kind, "high",
                          (*cause.category.log_ids[:3], *cause.category.metric_ids[:2]), primary))
    if not cause.established:
        lacking = cause.missing[0] if cause.missing else "the evidence does not establish it"
        out.append(Action(f"Find and write down the root cause ({lacking})", "prevent", "high",
                          tuple(s.id for s in pack.status_changes[:1]), primary))
    priors = recent_priors(pack)
    if priors:
        p = priors[0]
        shared = sorted({s for s in pack.incident.services if s.strip()} & set(p.services))
        out.append(Action(f"Check that the follow-ups of “{clip(p.title, 120)}” were done: "
                          f"{', '.join(shared)} failed again", "prevent", "medium", (p.id,),
                          shared[0] if shared else primary))
    return out


def error_headline(log: LogEvidence) -> str:
    """Return what a log template's error says, read from a raw sample when there is one (templates lose lines)."""
    return headline(log.samples[0]) if log.samples else headline(log.template)


def _test_item(pack: EvidencePack, cause: CauseView, deploy: DeployEvidence, commit: CommitEvidence) -> Action | None:
    """Return a test to add for the triggering change, named by the error it raised or the cause stated."""
    errors = {g.id: g for g in correlate.error_logs(pack)}
    links = [k for k in correlate.links(pack, deploy, tuple(errors.values()))
             if k.commit_id == commit.id and k.kind in ("file", "module")]
    if links:
        link = links[0]
        error = clip(error_headline(errors[link.log_id]), 120)
        return Action(f"Add a test that reproduces “{error}” in {link.detail}", "prevent", "high",
                      (link.log_id, commit.id), deploy.service)
    changed = code_files(commit)
    if changed and cause.statement is not None:
        stated = clip(without_label(cause.statement.sentence), 140).rstrip(".")
        return Action(f"Add a test for {changed[0]} covering the stated cause: {stated}",
                      "prevent", "medium", (commit.id, cause.statement.update_id), deploy.service)
    return None
