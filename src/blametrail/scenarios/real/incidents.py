"""The real-incident set: one JSON file per public outage under `data/`, loaded into frozen dataclasses and checked.

A file holds facts, written in our own words, with the postmortem's address: when the impact started, was
detected, mitigated and resolved (UTC; times the source only gives roughly are listed in `times.approximate`),
the affected services, the customer impact, the timeline events a team would have recorded while it happened
(human updates, alerts, deploys, configuration changes, mitigations), and what a reviewer expects the postmortem
to say: the severity band, the root cause, the contributing factors and the action items. Expectations carry
`terms`: groups of alternative words, every group of which must appear for a statement to count as made
(docs/evaluation.md defines each metric). The `split` says whether the incident may be looked at while improving
the analysis (`dev`) or only measured (`holdout`); it follows `split_of`, so nobody moves an incident by hand.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

DATA = Path(__file__).with_name("data")
KINDS = ("update", "alert", "deploy", "config_change", "mitigation")
SEVERITIES = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")
SPLITS = ("dev", "holdout")
TIMES = ("started_at", "detected_at", "mitigated_at", "resolved_at")
ACTION_KINDS = ("detect", "mitigate", "prevent")
ALERT_SEVERITIES = ("critical", "error", "warning", "info")
LOOKBACK = timedelta(minutes=120)  # settings.lookback_minutes' default: how far before the start changes are suspects
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,119}$")


class DataError(ValueError):
    """A data file that breaks the format; the message names the file and the field."""


def split_of(incident_id: str) -> str:
    """Return the split an incident id falls in: a third of the ids, chosen by their hash, are held out."""
    # why: a rule fixed before any result was seen, not a hand-picked list someone could tune towards
    return "holdout" if int(hashlib.sha256(incident_id.encode()).hexdigest(), 16) % 3 == 0 else "dev"


def normalize(text: str) -> str:
    """Lower-case the text and turn everything but letters and digits into single spaces, padded at both ends."""
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split()) + " "


@dataclass(frozen=True)
class Terms:
    """Groups of alternatives: a text says the thing when each group has an alternative in it (a trailing `*`
    matches any word ending, so `backtrack*` matches "backtracking")."""

    groups: tuple[tuple[str, ...], ...]

    def hits(self, text: str) -> int:
        """Return how many groups have an alternative in the text."""
        norm = normalize(text)
        return sum(any(_found(alt, norm) for alt in group) for group in self.groups)

    def share(self, text: str) -> float:
        """Return the share of groups found in the text (1.0 for no groups)."""
        return self.hits(text) / len(self.groups) if self.groups else 1.0

    def matches(self, text: str) -> bool:
        """Tell whether every group has an alternative in the text."""
        return self.hits(text) == len(self.groups)


def _found(alternative: str, norm: str) -> bool:
    prefix = alternative.endswith("*")
    words = normalize(alternative.rstrip("*")).strip()
    if not words:
        return False
    return (" " + words) in norm if prefix else (" " + words + " ") in norm


@dataclass(frozen=True)
class Event:
    """Something the team would have recorded while the incident ran."""

    ref: str  # unique in its incident
    at: datetime
    kind: str  # one of KINDS
    text: str  # the update's body, the alert's summary, or the change's commit message
    key: bool = False  # a postmortem timeline should cite it
    approx: bool = False
    service: str | None = None  # alerts, deploys and configuration changes
    version: str | None = None  # deploys and configuration changes
    author: str | None = None  # the team whose pipeline shipped the change (never a person)
    files: tuple[str, ...] = ()
    alert_name: str | None = None
    alert_severity: str | None = None
    alert_resolved_at: datetime | None = None

    @property
    def is_change(self) -> bool:
        """Tell whether the event is replayed as a deploy (deploys and configuration changes)."""
        return self.kind in ("deploy", "config_change")


@dataclass(frozen=True)
class Expected:
    """A statement a reviewer expects in the postmortem, with the terms that show it was made."""

    text: str
    terms: Terms
    kind: str | None = None  # action items: detect | mitigate | prevent


@dataclass(frozen=True)
class RealIncident:
    id: str
    title: str
    organization: str
    source_url: str
    split: str
    description: str  # what the responders wrote when they opened it (a symptom, no cause)
    services: tuple[str, ...]
    severity: str
    severity_reason: str
    started_at: datetime
    detected_at: datetime
    mitigated_at: datetime
    resolved_at: datetime
    customer_impact: str
    events: tuple[Event, ...]
    root_cause: Expected
    contributing_factors: tuple[Expected, ...]
    action_items: tuple[Expected, ...]
    trigger: str | None = None  # the ref of the change event that set it off, when the team recorded one
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    approximate: frozenset[str] = field(default_factory=frozenset)  # names of TIMES given only roughly
    notes: str = ""

    @property
    def duration_minutes(self) -> int:
        """Return the minutes from the start of impact to the resolution."""
        return int((self.resolved_at - self.started_at).total_seconds() // 60)

    @property
    def replayed(self) -> tuple[Event, ...]:
        """Return the events a replay sends: those dated no later than the resolution."""
        return tuple(e for e in self.events if e.at <= self.resolved_at)

    @property
    def key_events(self) -> tuple[Event, ...]:
        """Return the replayed events a postmortem timeline should cite, in time order."""
        return tuple(e for e in self.replayed if e.key)

    def event(self, ref: str) -> Event:
        """Return the event with this ref."""
        return next(e for e in self.events if e.ref == ref)


def load_all(directory: Path = DATA) -> list[RealIncident]:
    """Load every data file in the directory, oldest incident first."""
    incidents = [load(path) for path in sorted(directory.glob("*.json"))]
    return sorted(incidents, key=lambda i: (i.started_at, i.id))


def select(incidents: list[RealIncident], ids: list[str] | None = None, split: str | None = None) -> list[RealIncident]:
    """Return the incidents with these ids (in the order given) and/or in this split; refuse an unknown id."""
    chosen = incidents
    if ids:
        by_id = {i.id: i for i in incidents}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise DataError(f"unknown incident id(s): {', '.join(unknown)}; see `blametrail evaluate --real --list`")
        chosen = [by_id[i] for i in ids]
    if split is not None:
        chosen = [i for i in chosen if i.split == split]
    return chosen


def load(path: Path) -> RealIncident:
    """Load and check one data file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path.name}: not readable JSON: {exc}") from exc
    return _Reader(path.name, raw).incident(path.stem)


class _Reader:
    """Read one file's JSON, naming the file and the field in every complaint."""

    def __init__(self, name: str, raw: object) -> None:
        self.name = name
        if not isinstance(raw, dict):
            self.fail("", "the file must hold a JSON object")
        self.raw = raw

    def fail(self, where: str, message: str):
        raise DataError(f"{self.name}: {where + ': ' if where else ''}{message}")

    def text(self, obj: dict, key: str, where: str, *, optional: bool = False) -> str:
        value = obj.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}{key}", "a non-empty string is required")
        return value.strip()

    def time(self, value: object, where: str) -> datetime:
        if not isinstance(value, str) or not value.endswith("Z"):
            self.fail(where, "an ISO-8601 UTC time ending in Z is required")
        try:
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
        except ValueError:
            self.fail(where, f"{value!r} is not an ISO-8601 time")

    def terms(self, obj: dict, where: str) -> Terms:
        groups = obj.get("terms")
        if not isinstance(groups, list) or not groups:
            self.fail(f"{where}terms", "a non-empty list of groups of alternative words is required")
        out = []
        for i, group in enumerate(groups):
            if (not isinstance(group, list) or not group
                    or not all(isinstance(a, str) and normalize(a.rstrip("*")).strip() for a in group)):
                self.fail(f"{where}terms[{i}]", "a non-empty list of words is required")
            out.append(tuple(group))
        return Terms(tuple(out))

    def expected(self, obj: object, where: str, *, action: bool = False) -> Expected:
        if not isinstance(obj, dict):
            self.fail(where, "an object with text and terms is required")
        kind = None
        if action:
            kind = obj.get("kind")
            if kind not in ACTION_KINDS:
                self.fail(f"{where}.kind", f"one of {', '.join(ACTION_KINDS)} is required")
        return Expected(text=self.text(obj, "text", f"{where}."), terms=self.terms(obj, f"{where}."), kind=kind)

    def event(self, obj: object, i: int, services: tuple[str, ...]) -> Event:
        where = f"events[{i}]"
        if not isinstance(obj, dict):
            self.fail(where, "an object is required")
        kind = obj.get("kind")
        if kind not in KINDS:
            self.fail(f"{where}.kind", f"one of {', '.join(KINDS)} is required")
        fields = dict(ref=obj.get("ref") or f"e{i}", at=self.time(obj.get("at"), f"{where}.at"), kind=kind,
                      text=self.text(obj, "text", f"{where}."), key=bool(obj.get("key", False)),
                      approx=bool(obj.get("approx", False)))
        if not isinstance(fields["ref"], str) or not _ID.match(fields["ref"]):
            self.fail(f"{where}.ref", "lower-case words joined by hyphens are required")
        if kind in ("alert", "deploy", "config_change"):
            service = self.text(obj, "service", f"{where}.")
            if not _SERVICE.match(service):
                self.fail(f"{where}.service", f"{service!r} is not a service name")
            fields["service"] = service
        if kind == "alert":
            if fields["service"] not in services:
                self.fail(f"{where}.service", "an alert must name one of the incident's services (else it opens "
                                              "an incident of its own)")
            fields["alert_name"] = self.text(obj, "name", f"{where}.")
            fields["alert_severity"] = obj.get("severity", "critical")
            if fields["alert_severity"] not in ALERT_SEVERITIES:
                self.fail(f"{where}.severity", f"one of {', '.join(ALERT_SEVERITIES)} is required")
            if obj.get("resolved_at") is not None:
                fields["alert_resolved_at"] = self.time(obj["resolved_at"], f"{where}.resolved_at")
                if fields["alert_resolved_at"] < fields["at"]:
                    self.fail(f"{where}.resolved_at", "an alert cannot resolve before it fires")
        if kind in ("deploy", "config_change"):
            fields["version"] = self.text(obj, "version", f"{where}.")
            fields["author"] = self.text(obj, "author", f"{where}.")
            files = obj.get("files", [])
            if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
                self.fail(f"{where}.files", "a list of paths is required")
            fields["files"] = tuple(files)
        return Event(**fields)

    def incident(self, stem: str) -> RealIncident:
        raw = self.raw
        incident_id = self.text(raw, "id", "")
        if incident_id != stem or not _ID.match(incident_id):
            self.fail("id", f"must equal the file name without .json ({stem!r}), in lower-case words and hyphens")
        source = self.text(raw, "source_url", "")
        if not source.startswith("https://"):
            self.fail("source_url", "an https:// address of the public postmortem is required")
        split = raw.get("split")
        if split != split_of(incident_id):
            self.fail("split", f"must be {split_of(incident_id)!r} (scenarios.real.incidents.split_of)")
        services = raw.get("services")
        if (not isinstance(services, list) or not services
                or not all(isinstance(s, str) and _SERVICE.match(s) for s in services)
                or len(set(services)) != len(services)):
            self.fail("services", "a non-empty list of distinct service names is required")
        services = tuple(services)
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            self.fail("severity", f"one of {', '.join(SEVERITIES)} is required")
        times_raw = raw.get("times")
        if not isinstance(times_raw, dict):
            self.fail("times", "an object with started_at, detected_at, mitigated_at and resolved_at is required")
        times = {name: self.time(times_raw.get(name), f"times.{name}") for name in TIMES}
        approximate = times_raw.get("approximate", [])
        if not isinstance(approximate, list) or not set(approximate) <= set(TIMES):
            self.fail("times.approximate", f"a list of names among {', '.join(TIMES)} is required")
        if not (times["started_at"] <= times["detected_at"] <= times["resolved_at"]
                and times["started_at"] <= times["mitigated_at"] <= times["resolved_at"]):
            self.fail("times", "started_at <= detected_at, mitigated_at <= resolved_at is required")
        events_raw = raw.get("events")
        if not isinstance(events_raw, list) or not events_raw:
            self.fail("events", "a non-empty list is required")
        events = tuple(sorted((self.event(e, i, services) for i, e in enumerate(events_raw)),
                              key=lambda e: (e.at, e.ref)))
        refs = [e.ref for e in events]
        if len(set(refs)) != len(refs):
            self.fail("events", "refs must be unique")
        for e in events:
            if e.kind in ("update", "mitigation", "alert") and not times["started_at"] <= e.at:
                self.fail(f"events[{e.ref}]", "updates, mitigations and alerts cannot precede the start of impact "
                                              "(the incident is opened back-dated to it first)")
            if e.key and e.at > times["resolved_at"]:
                self.fail(f"events[{e.ref}]", "a key event must happen no later than the resolution (later events "
                                              "are not replayed)")
        if not any(e.key for e in events):
            self.fail("events", "at least one key event is required")
        trigger = raw.get("trigger")
        if trigger is not None and (trigger not in refs or not next(e for e in events if e.ref == trigger).is_change):
            self.fail("trigger", "must be the ref of a deploy or config_change event")
        if trigger is not None and not (times["started_at"] - LOOKBACK <= next(e for e in events if e.ref == trigger).at
                                        <= times["resolved_at"]):
            # why: a change recorded days before is a fact of the incident, but no draft can be expected to name it
            # from the evidence window; only changes inside it are scored as triggers
            self.fail("trigger", "the triggering change must fall within the evidence window (120 minutes before "
                                 "the start, up to the resolution)")
        expected = raw.get("expected")
        if not isinstance(expected, dict):
            self.fail("expected", "an object with root_cause, contributing_factors and action_items is required")
        factors = expected.get("contributing_factors")
        actions = expected.get("action_items")
        if not isinstance(factors, list) or not factors:
            self.fail("expected.contributing_factors", "a non-empty list is required")
        if not isinstance(actions, list) or not actions:
            self.fail("expected.action_items", "a non-empty list is required")
        extra = lambda key: tuple(v for v in raw.get(key, []) if isinstance(v, str))  # noqa: E731
        incident = RealIncident(
            id=incident_id, title=self.text(raw, "title", ""), organization=self.text(raw, "organization", ""),
            source_url=source, split=split, description=self.text(raw, "description", ""), services=services,
            severity=severity, severity_reason=self.text(raw, "severity_reason", ""),
            customer_impact=self.text(raw, "customer_impact", ""), events=events,
            root_cause=self.expected(expected.get("root_cause"), "expected.root_cause"),
            contributing_factors=tuple(self.expected(f, f"expected.contributing_factors[{i}]")
                                       for i, f in enumerate(factors)),
            action_items=tuple(self.expected(a, f"expected.action_items[{i}]", action=True)
                               for i, a in enumerate(actions)),
            trigger=trigger, categories=extra("categories"), sources=extra("other_sources"),
            approximate=frozenset(approximate), notes=self.text(raw, "notes", "", optional=True), **times)
        self.check_not_trivial(incident)
        return incident

    def check_not_trivial(self, incident: RealIncident) -> None:
        """Refuse expectations that a draft would meet by merely listing the services and repeating the title."""
        # why: drafts name the affected services ("5 services were affected (cognito, kinesis, ...)"); terms that
        # those names alone satisfy would count a factor as stated when nothing was said about it
        names = ", ".join(incident.services)
        bare = f"{len(incident.services)} services were affected ({names}), widening the impact."
        titled = f"{bare} {incident.title}. {incident.description}"
        if incident.root_cause.terms.matches(bare):
            self.fail("expected.root_cause.terms", "met by the list of services alone; add a group naming the cause")
        for kind, items in (("contributing_factors", incident.contributing_factors),
                            ("action_items", incident.action_items)):
            for i, item in enumerate(items):
                if item.terms.matches(titled):
                    self.fail(f"expected.{kind}[{i}].terms", "met by the list of services and the title alone; "
                                                              "add a group only a statement of it would contain")
