"""Tie deploys to observability findings: the metric onset, error templates, and files or words they share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from blametrail.analysis.evidence import DeployEvidence, EvidencePack
from blametrail.analysis.logs import is_errorish
from blametrail.analysis.observations import LogEvidence, MetricEvidence
from blametrail.analysis.times import utc

ONSET_LOOKBACK = timedelta(minutes=30)  # a metric onset this long before the incident start still counts
ONSET_LOG_LINES = 10  # without metrics, an error template this large marks the onset
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Words every log or commit uses: sharing them says nothing about a change causing an error.
_GENERIC = frozenset(
    """error errors exception exceptions failed failure fail fails failing request requests response http https
    status code line file files traceback recent call last most self none null true false info warn warning
    debug message internal unable cannot value handler main python java node return returned raise raised
    server service services client clients user users data time retry retries after before with from into
    when while your this that have will could should would about also then than just some only other over
    ms sec secs seconds millis ping string object class function method module package init test tests
    level severe fatal critical default version update updated get post put delete true lib src app""".split()
)
_GENERIC_STEMS = frozenset(
    "main index init __init__ utils util helpers helper app config settings base common test tests setup models "
    "model views view types constants server client core api handler handlers errors".split()
)


@dataclass(frozen=True)
class Link:
    """A commit tied to an error template: it touched a file the template names, or shares its words."""

    commit_id: str
    log_id: str
    kind: str  # "file" (a path), "module" (a file or module name) or "words"
    detail: str  # the path or module named, or the shared words joined by ", "


def observed(pack: EvidencePack) -> bool:
    """Tell whether observability data was looked at (explicitly, or because there are findings)."""
    return pack.observed or bool(pack.metrics or pack.logs)


def on_incident_services(pack: EvidencePack, service: str | None) -> bool:
    """Tell whether a finding belongs to one of the incident's services (unlabelled findings do)."""
    services = {s for s in pack.incident.services if s.strip()}
    return not services or not service or service in services


def incident_metrics(pack: EvidencePack) -> tuple[MetricEvidence, ...]:
    """Return the change points on the incident's services, earliest first."""
    return tuple(sorted((m for m in pack.metrics if on_incident_services(pack, m.service)),
                        key=lambda m: (utc(m.onset), m.id)))


def onset_metric(pack: EvidencePack) -> MetricEvidence | None:
    """Return the earliest change point on the incident's services near or after the incident start."""
    floor = utc(pack.incident.started_at) - ONSET_LOOKBACK
    return next((m for m in incident_metrics(pack) if utc(m.onset) >= floor), None)


def onset_log(pack: EvidencePack) -> LogEvidence | None:
    """Return the earliest sizeable new or spiking error template near or after the incident start."""
    floor = utc(pack.incident.started_at) - ONSET_LOOKBACK
    candidates = [g for g in pack.logs if g.first_seen is not None and utc(g.first_seen) >= floor
                  and g.incident_count >= ONSET_LOG_LINES and on_incident_services(pack, g.service)
                  and is_errorish(log_text(g))]
    return min(candidates, key=lambda g: (utc(g.first_seen), g.id), default=None)  # type: ignore[arg-type]


def incident_onset(pack: EvidencePack) -> datetime:
    """Return when the incident began: the earliest metric onset, else the first error burst, else the start."""
    metric = onset_metric(pack)
    if metric is not None:
        return utc(metric.onset)
    log = onset_log(pack)
    return utc(log.first_seen) if log is not None and log.first_seen is not None else utc(pack.incident.started_at)


def next_onset(pack: EvidencePack, at: datetime, slack: timedelta = timedelta(minutes=2)) -> MetricEvidence | None:
    """Return the first change point on the incident's services at or after a moment (minus a little slack)."""
    floor = utc(at) - slack
    return next((m for m in incident_metrics(pack) if utc(m.onset) >= floor), None)


def log_text(log: LogEvidence) -> str:
    """Return a template with its samples, as one text to search."""
    return "\n".join((log.template, *log.samples))


def error_logs(pack: EvidencePack) -> tuple[LogEvidence, ...]:
    """Return the new or spiking templates that read like errors, from the onset window on."""
    floor = incident_onset(pack) - ONSET_LOOKBACK
    return tuple(g for g in pack.logs
                 if is_errorish(log_text(g)) and (g.first_seen is None or utc(g.first_seen) >= floor))


def terms(text: str) -> set[str]:
    """Return distinctive lower-case words, splitting snake_case and CamelCase identifiers."""
    found: set[str] = set()
    for ident in _IDENT.findall(text):
        for part in ident.split("_"):
            found.update(w.lower() for w in _CAMEL.findall(part))
        if "_" in ident or any(c.isupper() for c in ident[1:]):
            found.add(ident.lower())  # the whole identifier too: charge_card, PaymentClient
    return {w for w in found if len(w) >= 4 and w not in _GENERIC and not w.isdigit()}


def links(pack: EvidencePack, deploy: DeployEvidence, logs: tuple[LogEvidence, ...]) -> tuple[Link, ...]:
    """Return how the deploy's commits tie to error templates: named files first, then shared words."""
    service_words = terms(deploy.service.replace("-", "_"))
    texts = [(g.id, log_text(g)) for g in logs]
    found: list[Link] = []
    for commit in deploy.commits:
        for path in commit.files:
            for kind, needle in _needles(path):
                hit = next((gid for gid, text in texts if _mentions(text, needle)), None)
                if hit:
                    found.append(Link(commit.id, hit, kind, path))
                    break
        own = terms(commit.message + " " + " ".join(p.replace("/", " ") for p in commit.files)) - service_words
        for gid, text in texts:
            shared = sorted(own & terms(text))
            if shared:
                found.append(Link(commit.id, gid, "words", ", ".join(shared[:4])))
    order = {"file": 0, "module": 1, "words": 2}
    return tuple(sorted(found, key=lambda k: (order[k.kind], -len(k.detail.split(", ")), k.log_id, k.commit_id)))


def strength(found: tuple[Link, ...]) -> str:
    """Grade links: "strong" (a file or module), "medium" (2+ shared words), "weak" (one word) or "none"."""
    if any(k.kind in ("file", "module") for k in found):
        return "strong"
    words = {w for k in found if k.kind == "words" for w in k.detail.split(", ")}
    return "medium" if len(words) >= 2 else "weak" if words else "none"


def _needles(path: str) -> list[tuple[str, str]]:
    """Return what a stack trace or error could call a changed file, most specific first."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return []
    base = parts[-1]
    stem = base.rsplit(".", 1)[0]
    needles = [("file", path.strip("/"))]
    if len(parts) >= 2:
        needles.append(("file", "/".join(parts[-2:])))
        if "." in base:
            needles.append(("module", f"{parts[-2]}.{stem}"))  # python logger / module path: payments.client
    if "." in base and len(stem) >= 4 and stem.lower() not in _GENERIC_STEMS:
        needles.append(("module", base))
    return needles


def _mentions(text: str, needle: str) -> bool:
    return re.search(r"(?<![\w.\-])" + re.escape(needle) + r"(?![\w\-])", text) is not None
