"""Log templates: Drain (drain3) mining of masked lines, then new and spiking templates against a baseline."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from operator import attrgetter

import numpy as np
from drain3.drain import Drain

from blametrail.analysis.observations import LogLine
from blametrail.analysis.times import utc

MASK = "<*>"
SAMPLES = 5
_SPIKE_WINDOW_SECONDS = 300.0
# One pass over each line. Every alternative starts with a hex digit and the look-behind comes after that first
# character, so the regex engine only tries word starts (≈2× faster than a leading look-behind). Masks numbers,
# durations, IPs with ports, timestamps, UUIDs and hex ids (6+ characters with a digit); "x509", "v2", "sha256"
# and file paths with line numbers ("client.py:<*>") keep their words.
_MASKABLE = re.compile(
    r"[0-9a-fA-F](?<![\w.\-][0-9a-fA-F])"
    r"(?:(?<=[0-9])[\w.:\-]*|[0-9a-fA-F]{7}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![\w])"
    r"|(?=[a-fA-F]*[0-9])[0-9a-fA-F]{5,}(?:-[0-9a-fA-F]+)*(?![\w]))"
)
_ERRORISH = re.compile(
    r"error|exception|\bfail|fatal|panic|timed? ?out\b|timeout|refused|traceback|x509|denied|unavailable"
    r"|unreachable|critical|crash|\boom|outofmemory|out of memory|killed|abort|reset by peer|no such host"
    r"|expired|exhausted|too many|deadlock|(?:status|code|http)[=: /]*5\d\d\b|\bE\d{4}\b|\bERR\b|\bSEVERE\b",
    re.I,
)


_FRAME = re.compile(r"^(?:at |File \"|goroutine |\.\.\.|Traceback \(|/|\w[\w.]*\(0x)|^\s*$")
_MESSAGE = re.compile(r"""(?:\bmsg=|"msg":\s*)"(.*)""")
_PREFIX = re.compile(r"^(?:(?:<\*>|[\d\-:.,TZ]+|level=\w+|ts=\S+|caller=\S+|\[[^\]]*\]|-+|\d+|"
                     r"(?:ERROR|WARN|WARNING|INFO|DEBUG|FATAL|SEVERE|CRITICAL)|[\w.$\[\]/]+ :)\s+)+")


def headline(text: str) -> str:
    """Return the line of a log template or sample that says what failed (the exception, not the stack frames)."""
    lines: list[str] = []
    for raw in text.replace("\\n", "\n").splitlines():
        if raw[:1].isspace() and lines:
            continue  # an indented stack frame
        line = raw.strip()
        message = _MESSAGE.search(line)
        if message:
            line = message.group(1).rstrip('"}').strip()
        if not _FRAME.search(line):
            lines.append(line)
    errors = [line for line in lines if _ERRORISH.search(line)]
    best = (errors or lines or [text.strip()])[-1]
    return _PREFIX.sub("", best).strip() or best


@dataclass(frozen=True)
class TemplateStat:
    """A log template (per service) that is new in the incident window or spikes against the baseline."""

    template: str
    service: str | None
    baseline_count: int
    incident_count: int
    new: bool
    spike_ratio: float | None  # incident rate / baseline rate; None when new
    first_seen: datetime | None  # first line in the incident window (for spikes: where the burst starts)
    samples: tuple[str, ...]  # up to SAMPLES raw lines from the incident window
    error: bool  # the template or its samples read like an error
    source: str = ""


def is_errorish(text: str) -> bool:
    """Tell whether a log text reads like an error (error, exception, timeout, refused, x509, 5xx…)."""
    return _ERRORISH.search(text) is not None


def mine(
    baseline: Iterable[LogLine], incident: Iterable[LogLine], *, baseline_seconds: float | None = None,
    incident_seconds: float | None = None, min_new: int = 3, min_spike: int = 10, spike_ratio: float = 5.0,
    sim_th: float = 0.5, limit: int = 500,
) -> list[TemplateStat]:
    """Return templates new or spiking in the incident lines (the `limit` largest), by first_seen then template."""
    base, inc = list(baseline), list(incident)
    lines = base + inc
    if not inc:
        return []
    keys, uniques = _mask_keys([line.text for line in lines])
    times = timestamps([line.at for line in lines])
    # Drain sees each distinct masked text once, earliest first: templates do not depend on the input order.
    first_time = np.full(len(uniques), np.inf)
    np.minimum.at(first_time, keys, times)
    order = sorted(range(len(uniques)), key=lambda u: (first_time[u], uniques[u]))
    cluster_of, templates = _cluster([uniques[u] for u in order], sim_th)
    clusters = np.empty(len(uniques), dtype=np.int64)
    clusters[order] = cluster_of
    clusters = clusters[keys]
    service_idx, service_names = _index([line.service for line in lines])
    in_incident = np.zeros(len(lines), dtype=bool)
    in_incident[len(base):] = True
    groups = clusters * len(service_names) + service_idx
    width = int(groups.max()) + 1
    base_counts = np.bincount(groups[~in_incident], minlength=width)
    inc_counts = np.bincount(groups[in_incident], minlength=width)
    base_span = baseline_seconds or _span(times[~in_incident])
    inc_span = incident_seconds or _span(times[in_incident])
    rates = (inc_counts / inc_span) / np.maximum(base_counts / base_span, 1e-12)
    notable = np.flatnonzero(np.where(base_counts == 0, inc_counts >= min_new,
                                      (inc_counts >= min_spike) & (rates >= spike_ratio)))
    notable = sorted(notable.tolist(), key=lambda g: (-int(inc_counts[g]), g))[:limit]
    # Incident rows grouped by template, each group in time order: one sort serves every template.
    rows_all = np.flatnonzero(in_incident)
    rows_all = rows_all[np.lexsort((times[rows_all], groups[rows_all]))]
    sorted_groups = groups[rows_all]
    stats = []
    for group in notable:
        n_inc, n_base = int(inc_counts[group]), int(base_counts[group])
        new = n_base == 0
        ratio = None if new else float(rates[group])
        lo, hi = np.searchsorted(sorted_groups, [group, group + 1])
        rows = rows_all[lo:hi]
        first = _burst_start(times[rows], 0.0 if new else n_base / base_span)
        earliest = sorted((times[i], lines[i].text) for i in rows[:50].tolist())
        samples = tuple(dict.fromkeys(text for _, text in earliest))[:SAMPLES]
        cluster, service = divmod(group, len(service_names))
        template = templates[cluster]
        stats.append(TemplateStat(
            template=template, service=service_names[service], baseline_count=n_base, incident_count=n_inc, new=new,
            spike_ratio=None if ratio is None else round(ratio, 2),
            first_seen=datetime.fromtimestamp(first, tz=timezone.utc), samples=samples,
            error=is_errorish(template) or any(is_errorish(s) for s in samples), source=lines[rows[0]].source,
        ))
    return sorted(stats, key=lambda s: (s.first_seen, s.template, s.service or ""))


def timestamps(moments: list[datetime]) -> np.ndarray:
    """Return POSIX seconds; naive datetimes are UTC (map() keeps the common all-aware case in C)."""
    if None in set(map(attrgetter("tzinfo"), moments)):
        moments = [m if m.tzinfo is not None else utc(m) for m in moments]
    return np.fromiter(map(datetime.timestamp, moments), dtype=np.float64, count=len(moments))


def _mask_keys(texts: list[str], chunk: int = 100_000) -> tuple[np.ndarray, list[str]]:
    """Mask every line; return one index per line into the distinct masked texts (first-seen order)."""
    # One process on purpose: measured on 2 cores, worker processes (spawn, pickling a million lines each way)
    # cost more than the masking they share, while map() over the C regex keeps one core at ≈300k lines/s.
    # Chunks bound the masked copies held at once.
    position: dict[str, int] = {}
    keys = np.empty(len(texts), dtype=np.int64)
    sub = partial(_MASKABLE.sub, MASK)
    for lo in range(0, len(texts), chunk):
        masked = list(map(sub, texts[lo:lo + chunk]))
        for text in dict.fromkeys(masked):
            position.setdefault(text, len(position))
        keys[lo:lo + len(masked)] = np.fromiter(map(position.__getitem__, masked), dtype=np.int64, count=len(masked))
    return keys, list(position)


def _index(values: list) -> tuple[np.ndarray, list]:
    """Return each value's index among the distinct values (first-seen order), and those values."""
    distinct = list(dict.fromkeys(values))
    position = {value: i for i, value in enumerate(distinct)}
    return np.fromiter(map(position.__getitem__, values), dtype=np.int64, count=len(values)), distinct


def _span(times: np.ndarray) -> float:
    return max(float(times.max() - times.min()), 60.0) if times.size else 60.0


def _burst_start(times: np.ndarray, base_rate: float) -> float:
    """Return the first (sorted) time where the template runs well above its baseline rate."""
    if base_rate <= 0:
        return float(times[0])
    need = max(3.0, 3 * base_rate * _SPIKE_WINDOW_SECONDS)
    within = np.searchsorted(times, times + _SPIKE_WINDOW_SECONDS, side="right") - np.arange(times.size)
    hits = np.flatnonzero(within >= need)
    return float(times[hits[0]] if hits.size else times[0])


def _cluster(uniques: list[str], sim_th: float) -> tuple[list[int], dict[int, str]]:
    """Feed each distinct masked text once to Drain; return each one's cluster id and the final templates."""
    drain = Drain(sim_th=sim_th, depth=5, max_children=100, param_str=MASK)
    # A leading marker token puts errors and other lines in different Drain subtrees, so a new error can never
    # be absorbed into a look-alike healthy template.
    ids = [drain.add_log_message(("E " if is_errorish(t) else "I ") + t)[0].cluster_id for t in uniques]
    return ids, {c.cluster_id: " ".join(c.log_template_tokens[1:]) for c in drain.clusters}
