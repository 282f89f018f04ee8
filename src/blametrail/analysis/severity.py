"""Severity from written definitions: customer-facing impact, duration and breadth, as data an org can override.

The definitions (docs/analysis.md prints them) are checked from SEV-1 down; the first whose rule matches wins. A rule
names the impact kinds it covers and the minimum duration and number of affected services. Impact is read from the
words of the title, description and updates (negations such as "no outage" or "scaled down" removed) and from
measurements (monitors down, error and latency change points), whichever is more severe. A severity recorded on the
incident is never changed: the inferred one only flags a mismatch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from blametrail.analysis import correlate
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.text import plural
from blametrail.analysis.times import utc

SEVERITIES = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")
# Impact kinds, least to most severe.
IMPACTS = ("none", "unknown", "degraded", "partial", "outage", "total")
IMPACT_WORDS = {
    "none": "no customer impact", "unknown": "impact of unknown kind", "degraded": "customer-facing degradation",
    "partial": "a partial customer-facing outage", "outage": "a customer-facing outage",
    "total": "a total or global outage",
}
OUTAGE_CHECK_SHARE = 0.5  # a monitor failing at least this share of its checks saw an outage, below it a degradation
OUTAGE_ERROR_RATIO = 0.5  # an error ratio reaching this is an outage
PARTIAL_ERROR_RATIO = 0.05  # one reaching this is a partial outage (requests failing); any smaller rise a degradation
LATENCY_DEGRADED = 1.0  # a latency change point of +100% or more is a degradation


@dataclass(frozen=True)
class Rule:
    """A condition for a severity: one of these impact kinds, for at least so long, on at least so many services."""

    impacts: frozenset[str]
    min_minutes: int = 0
    min_services: int = 1

    def matches(self, impact: str, minutes: int, services: int) -> bool:
        """Tell whether an incident with this impact, duration and breadth meets the rule."""
        return impact in self.impacts and minutes >= self.min_minutes and services >= self.min_services

    def describe(self) -> str:
        """Say the rule in words, e.g. "a customer-facing outage lasting 60 minutes or more"."""
        if self.impacts >= frozenset(IMPACTS) and self.min_minutes == 0 and self.min_services <= 1:
            return "anything the levels above do not cover"
        kinds = " or ".join(IMPACT_WORDS[k] for k in IMPACTS if k in self.impacts)
        limits = []
        if self.min_minutes:
            limits.append(f"lasting {plural(self.min_minutes, 'minute')} or more")
        if self.min_services > 1:
            limits.append(f"on {self.min_services} or more services")
        return kinds + (" " + " and ".join(limits) if limits else "")


@dataclass(frozen=True)
class Definition:
    """One severity level: its written meaning and the rules that put an incident in it."""

    severity: str
    meaning: str
    rules: tuple[Rule, ...]


_ALL = frozenset(IMPACTS)
DEFAULT_DEFINITIONS: tuple[Definition, ...] = (
    Definition("SEV-1", "Critical: a total or global outage; a customer-facing outage lasting an hour or more or "
               "hitting three or more services; or a partial outage or degradation lasting four hours or more "
               "across three or more services.",
               (Rule(frozenset({"total"})), Rule(frozenset({"outage"}), 60), Rule(frozenset({"outage"}), 0, 3),
                Rule(frozenset({"partial", "degraded"}), 240, 3))),
    Definition("SEV-2", "Major: any other customer-facing outage, full or partial; a degradation lasting two hours "
               "or more or on three or more services; impact of unknown kind lasting four hours or more, or an hour "
               "or more on three or more services.",
               (Rule(frozenset({"outage", "partial"})), Rule(frozenset({"degraded"}), 120),
                Rule(frozenset({"degraded"}), 0, 3), Rule(frozenset({"unknown"}), 240),
                Rule(frozenset({"unknown"}), 60, 3))),
    Definition("SEV-3", "Minor: any other customer-facing degradation; impact of unknown kind lasting 30 minutes or "
               "more or on two or more services; no customer impact but lasting four hours or more.",
               (Rule(frozenset({"degraded"})), Rule(frozenset({"unknown"}), 30), Rule(frozenset({"unknown"}), 0, 2),
                Rule(frozenset({"none"}), 240))),
    Definition("SEV-4", "Low: everything else: brief, internal, or without customer impact.", (Rule(_ALL),)),
)

_SEVERITY = re.compile(r"^sev[-_ ]?([1-4])$")
_SEVERITY_WORDS = {"critical": "SEV-1", "major": "SEV-2", "high": "SEV-2", "moderate": "SEV-3", "medium": "SEV-3",
                   "minor": "SEV-4", "low": "SEV-4"}
_TOTAL = re.compile(
    r"\ball (?:customers|users|traffic|regions|requests)\b|\b(?:complete|full|total|global|worldwide|site-?wide"
    r"|platform-?wide|major) outage\b|\bdata loss\b|\b(?:site|everything|platform) (?:is |was |went )?down\b"
    r"|\bhard down\b|\bglobally\b|\bworldwide\b|\bin all regions\b|\bacross all regions\b",
    re.I,
)
_OUTAGE = re.compile(r"\boutages?\b|\bunavailable\b|\bunreachable\b|\bdown\b|\bnot loading\b|\bnot responding\b",
                     re.I)
_NOT_OUTAGE = re.compile(  # "no outage", "narrowed it down", "scaled down" say nothing about impact
    r"\b(?:no|not an?|without an?) (?:\w+ )?outage\b|\b(?:slow\w*|narrow\w*|scal\w*|shut\w*|track\w*|wind\w*"
    r"|turn\w*|step\w*|calm\w*|settl\w*|cool\w*|pinn?\w*|writ\w*|wrote|count\w*|upside|up and|went|go(?:es|ing)?"
    r"|errors? (?:went|are|is|were|was)|rate (?:went|is|was)) (?:it |this )?down\b",
    re.I,
)
_PARTIAL = re.compile(  # qualifiers that make an outage partial
    r"\bpartial(?:ly)?\b|\bsome (?:customers|users|requests|regions)\b|\bintermittent(?:ly)?\b|\bdegraded\b"
    r"|\bdegradation\b|\b\d{1,2}(?:\.\d+)?\s?% of\b|\bin (?:one|a single|some) regions?\b",
    re.I,
)
_FAILING = re.compile(  # customers' requests failing: a partial outage even without the word "outage"
    r"\b5\d\ds?\b|\b5xxs?\b|\b(?:requests?|calls?|payments?|logins?|checkouts?|orders?|uploads?|searches|pages?) "
    r"(?:are |were |is |was )?(?:fail\w*|erroring|rejected|timing out)\b"
    r"|\b(?:customers?|users?) (?:can(?:no|')t|cannot|could ?n[o']t|are unable to|were unable to|get|got|see|saw)"
    r" (?:\w+ ){0,3}(?:errors?|fail\w*|log ?in|check ?out|pay|load|connect|access)\b",
    re.I,
)
_DEGRADED = re.compile(
    r"\bdegraded\b|\bdegradation\b|\belevated\b|\bslow(?:ness|er)?\b|\blatency\b|\btimeouts?\b|\btiming out\b"
    r"|\bfail(?:s|ing|ed|ures?)?\b|\berrors?\b|\b429s?\b|\bcrash\w*|\brestarting\b",
    re.I,
)
_NONE = re.compile(
    r"\bno (?:customer|user|external)[- ](?:facing )?impact\b|\bno impact (?:to|on|for) (?:customers|users)\b"
    r"|\bnot (?:customer|user)[- ]facing\b|\binternal[- ]only\b|\bno customers? (?:were |was )?affected\b",
    re.I,
)
_ERRORISH = re.compile(r"error|5xx|fail|exception", re.I)
_LATENCY = re.compile(r"latency|duration|response_time|p9\d", re.I)


@dataclass(frozen=True)
class Assessment:
    """The severity a draft shows, the one the definitions give, and why."""

    severity: str  # the recorded one when set, else the inferred one
    recorded: str | None
    inferred: str
    impact: str  # one of IMPACTS
    minutes: int | None
    services: int
    situation: str  # impact, duration and breadth in words
    rule: str  # the matched rule in words
    meaning: str  # the matched definition's meaning
    clues: tuple[str, ...]  # what the impact was read from, each with its source
    evidence: tuple[str, ...]

    @property
    def gap(self) -> int:
        """Return how many levels the recorded severity is below the inferred one (negative: above; 0: none)."""
        if self.recorded is None:
            return 0
        return SEVERITIES.index(self.recorded) - SEVERITIES.index(self.inferred)

    def why(self) -> str:
        """Explain the inferred severity: the situation and what the impact was read from."""
        clues = "; ".join(self.clues) if self.clues else "no words or measurements describe the impact"
        return f"{self.situation} ({clues})"


def confidence_note(rated: Assessment) -> str | None:
    """Explain an inferred severity, or a recorded one above what the definitions support (below one is a finding of
    what went poorly, see factors.severity_finding)."""
    if rated.recorded is None:
        return f"Severity {rated.inferred} was inferred from the written definitions: {rated.why()}."
    if rated.gap < 0:
        return (f"The recorded severity {rated.recorded} was kept, though by the written definitions the evidence "
                f"supports {rated.inferred}: {rated.why()}.")
    return None


def normalise(value: str | None) -> str | None:
    """Return "SEV-1".."SEV-4" for a recorded severity ("sev1", "critical", "SEV-2"…), else None."""
    raw = (value or "").strip().lower()
    given = _SEVERITY.match(raw)
    if given:
        return f"SEV-{given.group(1)}"
    return _SEVERITY_WORDS.get(raw)


def assess(pack: EvidencePack, minutes: int | None, services: Iterable[str],
           definitions: tuple[Definition, ...] = DEFAULT_DEFINITIONS) -> Assessment:
    """Infer the severity from the definitions and keep the recorded one when set."""
    count = len({s for s in services if s.strip()})
    impact, clues, evidence = impact_of(pack)
    duration = minutes or 0
    for definition in definitions:
        rule = next((r for r in definition.rules if r.matches(impact, duration, count)), None)
        if rule is not None:
            break
    else:  # why: overridden definitions may leave gaps; the least severe level is the honest default
        definition, rule = definitions[-1], Rule(_ALL)
    span = f"for {plural(minutes, 'minute')}" if minutes is not None else "with no resolution time yet"
    situation = f"{IMPACT_WORDS[impact]} {span} on {plural(count, 'service')}"
    recorded = normalise(pack.incident.severity)
    return Assessment(severity=recorded or definition.severity, recorded=recorded, inferred=definition.severity,
                      impact=impact, minutes=minutes, services=count, situation=situation, rule=rule.describe(),
                      meaning=definition.meaning, clues=tuple(clues), evidence=tuple(dict.fromkeys(evidence)))


def impact_of(pack: EvidencePack) -> tuple[str, list[str], list[str]]:
    """Return the impact kind, the clues it was read from and the evidence ids they cite."""
    inc = pack.incident
    found: list[tuple[int, str, str | None]] = []  # (rank, clue, evidence id)
    texts = [("the title", None, inc.title), ("the description", None, inc.description)]
    texts += [(u.id, u.id, u.body) for u in sorted(pack.updates, key=lambda u: (utc(u.at), u.id))]
    for where, ident, text in texts:
        clean = _NOT_OUTAGE.sub(" ", text or "")
        for kind, pattern in (("total", _TOTAL), ("none", _NONE), ("outage", _OUTAGE), ("partial", _FAILING),
                              ("degraded", _DEGRADED)):
            match = pattern.search(clean)
            if match is None:
                continue
            if kind == "outage" and _PARTIAL.search(clean):
                kind = "partial"
            source = f"(evidence: {ident})" if ident else f"in {where}"
            found.append((IMPACTS.index(kind), f"“{match.group(0).lower()}” {source}", ident))
            break
    found += _measured(pack)
    if not found:
        return "unknown", [], []
    said_none = any(rank == 0 for rank, _, _ in found)
    measured_or_said = [f for f in found if f[0] > 0]
    if said_none and not any(f[0] >= IMPACTS.index("partial") for f in measured_or_said):
        # why: "no customer impact" in the responders' words outweighs error words that describe internal symptoms
        chosen = [f for f in found if f[0] == 0]
        return "none", [c for _, c, _ in chosen][:4], [i for _, _, i in chosen if i]
    top = max(rank for rank, _, _ in found)
    chosen = [f for f in found if f[0] == top][:4]
    return IMPACTS[top], [c for _, c, _ in chosen], [i for _, _, i in chosen if i]


def is_impact_metric(metric) -> bool:
    """Tell whether a change point measures customer impact: errors going up, or latency at least doubling."""
    if metric.direction != "up":
        return False
    return bool(_ERRORISH.search(metric.series)) or (bool(_LATENCY.search(metric.series))
                                                     and metric.magnitude >= LATENCY_DEGRADED)


def _measured(pack: EvidencePack) -> list[tuple[int, str, str | None]]:
    """Return impact clues from measurements: monitors that went down, error and latency change points."""
    out: list[tuple[int, str, str | None]] = []
    for event in pack.monitor_events:
        if event.state not in ("down", "up") or (event.state == "up" and not event.total_checks):
            continue
        share = event.failed_checks / event.total_checks if event.total_checks else 1.0
        kind = "outage" if share >= OUTAGE_CHECK_SHARE else "degraded"
        checks = (f"{event.failed_checks} of {event.total_checks} checks failed" if event.total_checks
                  else "reported down")
        out.append((IMPACTS.index(kind), f"monitor {event.monitor}: {checks} (evidence: {event.id})", event.id))
    for metric in correlate.incident_metrics(pack):
        if metric.direction == "up" and _ERRORISH.search(metric.series):
            ratio = metric.unit.strip().lower() in ("ratio", "fraction", "percentunit", "") and metric.after <= 1
            kind = ("outage" if ratio and metric.after >= OUTAGE_ERROR_RATIO else
                    "partial" if ratio and metric.after >= PARTIAL_ERROR_RATIO else "degraded")
        elif metric.direction == "up" and _LATENCY.search(metric.series) and metric.magnitude >= LATENCY_DEGRADED:
            kind = "degraded"
        else:
            continue
        where = f" of {metric.service}" if metric.service else ""
        out.append((IMPACTS.index(kind), f"{metric.series}{where} went up (evidence: {metric.id})", metric.id))
    return out


def definitions_from(data: object) -> tuple[Definition, ...]:
    """Read definitions from an organization's template (a list of {severity, meaning, rules}); raise ValueError."""
    if not isinstance(data, list) or not data:
        raise ValueError("severity definitions must be a non-empty list")
    out = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, Mapping):
            raise ValueError(f"severity definition {n} must be an object")
        severity = item.get("severity")
        if severity not in SEVERITIES:
            raise ValueError(f"severity definition {n}: severity must be one of {', '.join(SEVERITIES)}")
        rules = item.get("rules")
        if not isinstance(rules, list) or not rules:
            raise ValueError(f"severity definition {n} ({severity}) needs at least one rule")
        parsed = []
        for rule in rules:
            if not isinstance(rule, Mapping):
                raise ValueError(f"{severity}: every rule must be an object")
            impacts = rule.get("impacts", list(IMPACTS))
            if not isinstance(impacts, list) or not impacts or any(i not in IMPACTS for i in impacts):
                raise ValueError(f"{severity}: impacts must be a list of {', '.join(IMPACTS)}")
            minutes, services = rule.get("min_minutes", 0), rule.get("min_services", 1)
            for name, value in (("min_minutes", minutes), ("min_services", services)):
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000_000:
                    raise ValueError(f"{severity}: {name} must be a whole number of at least 0")
            parsed.append(Rule(frozenset(impacts), minutes, max(1, services)))
        meaning = item.get("meaning", "")
        if not isinstance(meaning, str):
            raise ValueError(f"{severity}: meaning must be text")
        out.append(Definition(severity, meaning.strip(), tuple(parsed)))
    order = [SEVERITIES.index(d.severity) for d in out]
    if order != sorted(order) or len(set(order)) != len(order):
        raise ValueError("severity definitions must list each severity once, most severe first")
    return tuple(out)


def definitions_to_data(definitions: tuple[Definition, ...] = DEFAULT_DEFINITIONS) -> list[dict]:
    """Return definitions as plain data (the shape definitions_from reads), e.g. to seed a template."""
    return [{"severity": d.severity, "meaning": d.meaning,
             "rules": [{"impacts": [k for k in IMPACTS if k in r.impacts], "min_minutes": r.min_minutes,
                        "min_services": r.min_services} for r in d.rules]} for d in definitions]
