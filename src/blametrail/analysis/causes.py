"""Signal categories behind an incident without a deploy: certificate, DNS, dependency, database, memory, traffic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from blametrail.analysis import correlate
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.text import plural
from blametrail.analysis.times import utc

DOMINANT_SCORE = 0.4
STRONG_SCORE = 0.6  # a category this strong is stated with medium confidence
_FULL_VOLUME = 20  # error lines at which a category's log evidence counts fully
_METRIC_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class _Kind:
    key: str
    label: str
    external: bool  # outside the service's own code: a deploy rarely explains it
    logs: re.Pattern[str]
    metric: re.Pattern[str] | None = None
    direction: str = "up"
    min_magnitude: float = 0.2
    action: str = ""  # the follow-up an SRE team would file
    action_kind: str = "prevent"  # detect | mitigate | prevent


# Order matters: the first match wins ("dial tcp: lookup db: no such host" is DNS, not a dependency).
KINDS = (
    _Kind("certificate", "certificate expiry", True, re.compile(
        r"x509|certificate (?:has )?expired|cert(?:ificate)?[\w ]{0,20}expir|certificate verify failed"
        r"|CERTIFICATE_VERIFY_FAILED|ssl[\w ]{0,20}(?:handshake|certificate)|tls handshake (?:error|fail)", re.I),
        re.compile(r"cert|ssl|tls", re.I), "down",
        action="Automate certificate renewal and alert well before certificates expire"),
    _Kind("dns", "DNS resolution failure", True, re.compile(
        r"no such host|nxdomain|servfail|name resolution|could not resolve|getaddrinfo|name or service not known"
        r"|unknownhostexception|dns (?:lookup|resolution|query|error|timeout)|lookup [\w.\-]+ on [\d.:]+", re.I),
        re.compile(r"dns|resolv", re.I),
        action="Monitor DNS resolution of critical hosts and document a fallback for resolver failures",
        action_kind="detect"),
    _Kind("database", "database saturation", False, re.compile(
        r"too many (?:connections|clients)|(?:connection )?pool (?:is )?(?:exhausted|full|timeout)|queuepool limit"
        r"|remaining connection slots|max_connections|deadlock|lock wait timeout|could not (?:obtain|acquire) "
        r"(?:a )?(?:database )?connection|timeout acquiring (?:a )?connection|database is locked"
        r"|statement timeout|canceling statement|slow query|maximum statement execution time"
        r"|timeout exceeded when trying to connect", re.I),
        re.compile(r"(?:^|[_.\-])(?:db|database|postgres\w*|pg|mysql|sql|rds)(?:[_.\-]|$)", re.I),
        action="Review database connection pool limits and the slowest queries, and alert on saturation"),
    _Kind("memory", "memory exhaustion", False, re.compile(
        r"out of memory|outofmemory|\boom|memoryerror|cannot allocate memory|memory limit|heap (?:space|exhausted)"
        r"|killed process|exit code 137", re.I),
        re.compile(r"mem|heap|rss|working_set", re.I),
        action="Find the source of the memory growth and alert on memory use before the limit is reached"),
    _Kind("traffic", "traffic surge", True, re.compile(
        r"rate limit|too many requests|\b429\b|throttl|queue (?:is )?full|load shed", re.I),
        re.compile(r"requests?(?:_per_|_)?(?:rate|count|total|rps|qps|per_second)|\brps\b|\bqps\b|throughput"
                   r"|traffic|req_rate|http_requests", re.I), "up", 1.0,
        action="Review capacity, autoscaling and rate limits for traffic surges of this size", action_kind="mitigate"),
    _Kind("dependency", "dependency outage", True, re.compile(
        r"connection refused|econnrefused|connection reset|reset by peer|upstream|bad gateway|gateway timeout"
        r"|service unavailable|\b50[234]\b|timed? ?out (?:calling|connecting|waiting|talking|after)|connect timeout"
        r"|read timeout|circuit (?:breaker )?(?:is )?open|dial tcp|no healthy upstream|unreachable"
        r"|deadline exceeded|client\.timeout|deadlineexceeded|(?:read|connect) timed out", re.I),
        re.compile(r"upstream|dependency|external|downstream", re.I),
        action="Add timeouts, retries with backoff and a circuit breaker around the failing dependency",
        action_kind="mitigate"),
)
_BY_KEY = {k.key: k for k in KINDS}


@dataclass(frozen=True)
class Category:
    """A signal category behind the incident, with its strength and the evidence that shows it."""

    key: str
    label: str
    score: float
    external: bool
    lines: int  # error lines in its templates
    share: float  # of all new or spiking error lines
    log_ids: tuple[str, ...]
    metric_ids: tuple[str, ...]
    reasons: tuple[str, ...]


def classify(text: str) -> str | None:
    """Return the category key a log text belongs to, if any."""
    return next((k.key for k in KINDS if k.logs.search(text)), None)


def label(key: str) -> str:
    """Return a category's label, e.g. "certificate expiry"."""
    return _BY_KEY[key].label


def action(key: str) -> str:
    """Return the follow-up action for a category."""
    return _BY_KEY[key].action


def action_kind(key: str) -> str:
    """Return whether a category's follow-up detects, mitigates or prevents ("detect" | "mitigate" | "prevent")."""
    return _BY_KEY[key].action_kind


def categorise(pack: EvidencePack) -> tuple[Category, ...]:
    """Rank the categories the error templates and metric change points point at, strongest first."""
    logs = correlate.error_logs(pack)
    total = sum(g.incident_count for g in logs)
    by_kind: dict[str, list] = {k.key: [] for k in KINDS}
    for g in logs:
        key = classify(correlate.log_text(g))
        if key:
            by_kind[key].append(g)
    onset = correlate.incident_onset(pack)
    metrics: dict[str, list] = {k.key: [] for k in KINDS}
    for m in pack.metrics:
        kind = next((k for k in KINDS if k.metric is not None and k.metric.search(m.series)), None)
        if (kind and m.direction == kind.direction and abs(m.magnitude) >= kind.min_magnitude
                and abs(utc(m.onset) - onset) <= _METRIC_WINDOW):
            metrics[kind.key].append(m)
    found = []
    for kind in KINDS:
        logs_k, metrics_k = by_kind[kind.key], metrics[kind.key]
        if not logs_k and not metrics_k:
            continue
        lines = sum(g.incident_count for g in logs_k)
        share = lines / total if total else 0.0
        score = 0.6 * share * min(1.0, lines / _FULL_VOLUME) + (0.35 if metrics_k else 0.0)
        if metrics_k and min(utc(m.onset) for m in metrics_k) <= onset:
            score += 0.1  # the category's own metric moved first: cause rather than symptom
        reasons = []
        if logs_k:
            reasons.append(f"{plural(lines, 'error line')} in {plural(len(logs_k), 'new or spiking template')} "
                           f"({share:.0%} of the new errors) read as {kind.label}")
        reasons += [f"{m.series} went {m.direction} at {m.onset:%H:%M} ({m.id})" for m in metrics_k[:3]]
        found.append(Category(
            key=kind.key, label=kind.label, score=round(min(score, 1.0), 3), external=kind.external, lines=lines,
            share=round(share, 3), log_ids=tuple(g.id for g in logs_k), metric_ids=tuple(m.id for m in metrics_k),
            reasons=tuple(reasons),
        ))
    return tuple(sorted(found, key=lambda c: (-c.score, c.key)))


def dominant(pack: EvidencePack) -> Category | None:
    """Return the category that clearly dominates the evidence, if one does."""
    ranked = categorise(pack)
    if not ranked or ranked[0].score < DOMINANT_SCORE:
        return None
    if len(ranked) > 1 and ranked[1].score > ranked[0].score - 0.1:
        return None
    return ranked[0]
