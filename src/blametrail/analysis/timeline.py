"""The postmortem timeline: status, updates, deploys, monitors, alerts, metric onsets and log templates, merged.

The incident's timeline ends at its resolution. Events after it (a fix deployed, a follow-up update, an alert that
cleared late) are kept in a clearly marked part at the end: each such row has `after_resolution: true` and its
description starts with "After resolution: ". The model's grounding (engines/grounding.py) applies the same rule.
"""

from __future__ import annotations

from datetime import datetime

from blametrail.analysis import correlate, signals
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.observations import LogEvidence, MetricEvidence
from blametrail.analysis.suspects import Suspect, affects_incident, in_window, rollback_deploys
from blametrail.analysis.text import clip, plural
from blametrail.analysis.times import iso, utc

MAX_METRIC_ROWS = 10
MAX_LOG_ROWS = 10
MAX_ROWS = 300  # a postmortem's timeline is read by people: past this, the incident page has the full record
_ALWAYS = frozenset({"status", "metric", "log", "monitor"})  # few by construction, and each one is a turning point
_ENDS = 25  # of the rest, the first and last this many are always kept
_OPENED = frozenset({"open", "opened", "triggered", "created", "firing"})
_RESOLVED = frozenset({"resolved", "closed"})
AFTER_RESOLUTION = "After resolution: "  # the mark every row after the resolution carries


def after_resolution(pack: EvidencePack, at: datetime) -> bool:
    """Tell whether a moment lies after the incident's resolution (the end of its own timeline)."""
    resolved = pack.incident.resolved_at
    return resolved is not None and utc(at) > utc(resolved)


def mark_after_resolution(description: str) -> str:
    """Prefix a row's description with the after-resolution mark (once)."""
    return description if description.startswith(AFTER_RESOLUTION) else AFTER_RESOLUTION + description


def build(pack: EvidencePack, suspects: tuple[Suspect, ...]) -> list[dict]:
    """Return the merged, deduplicated, chronological timeline; every row cites its evidence."""
    inc = pack.incident
    start = utc(inc.started_at)
    rows: list[tuple[datetime, int, dict]] = []

    def add(at: datetime, rank: int, source: str, text: str, evidence: list[str]) -> None:
        row = {"at": iso(utc(at)), "source": source, "description": text, "evidence": evidence}
        if after_resolution(pack, at):
            row["description"], row["after_resolution"] = mark_after_resolution(text), True
        rows.append((utc(at), rank, row))

    kinds = [(s, s.status.strip().lower()) for s in pack.status_changes]
    if not any(kind in _OPENED and utc(s.at) == start for s, kind in kinds):
        add(start, 1, "status", f"Incident started: {clip(inc.title, 200)}", [])
    for change, kind in kinds:
        verb = "Incident opened" if kind in _OPENED else "Incident resolved" if kind in _RESOLVED else (
            f"Status changed to {clip(change.status, 60)}")
        who = f" by {who_name(change.actor)}" if change.actor else ""
        # why: a recorded detail is already a full sentence ("Incident opened by …"); don't say it twice
        text = clip(change.detail) if change.detail.strip() else verb + who
        add(change.at, 1 if kind in _OPENED else 4 if kind in _RESOLVED else 3, "status", text, [change.id])
    if inc.resolved_at and not any(kind in _RESOLVED for _, kind in kinds):
        who = f" by {who_name(inc.resolved_by)}" if inc.resolved_by else ""
        add(inc.resolved_at, 4, "status", f"Incident resolved{who}", [])
    for update in pack.updates:
        author = f" from {update.author}" if update.author else ""
        add(update.at, 2, "update", f"Update{author}: {clip(update.body) or '(no text)'}", [update.id])
    for at, text, evidence in deploy_events(pack, suspects):
        add(at, 0, "deploy", text, evidence)
    for at, source, text, evidence in signals.timeline_rows(pack):
        add(at, 1, source, text, evidence)
    for metric in _chosen_metrics(pack):
        add(metric.onset, 1, "metric", metric_sentence(metric), [metric.id])
    for log in _chosen_logs(pack):
        if log.first_seen is not None:
            add(log.first_seen, 1, "log", log_sentence(log), [log.id])
    rows.sort(key=lambda row: (row[0], row[1]))
    return bounded(_deduplicated([row[2] for row in rows]))


def bounded(rows: list[dict], limit: int = MAX_ROWS) -> list[dict]:
    """Keep a long timeline readable: every status change, metric, log and monitor row, the first and last of the
    others, and an even sample between; one row says how many were left out (the incident page lists them all)."""
    if len(rows) <= limit:
        return rows
    always = [n for n, r in enumerate(rows) if r["source"] in _ALWAYS]
    rest = [n for n, r in enumerate(rows) if r["source"] not in _ALWAYS]
    budget = max(limit - 1 - len(always), 2 * _ENDS)
    if len(rest) > budget:
        middle = rest[_ENDS:-_ENDS]
        room = budget - 2 * _ENDS
        sample = [middle[int(k * len(middle) / room)] for k in range(room)] if room > 0 else []
        rest = rest[:_ENDS] + sample + rest[-_ENDS:]
    keep = sorted(set(always[: limit - 1]) | set(rest))
    left_out = len(rows) - len(keep)
    first_gap = next((n for n in range(len(rows)) if n not in set(keep)), len(rows) - 1)
    kinds = sorted({rows[n]["source"] for n in range(len(rows)) if n not in set(keep)})
    note = {"at": rows[first_gap]["at"], "source": "status", "evidence": [],
            "description": f"{left_out} more timeline entries ({', '.join(kinds)}) are not listed here, so that it "
                           "stays readable: the incident's own timeline has every one."}
    out = [rows[n] for n in keep]
    out.insert(next((i for i, r in enumerate(out) if r["at"] > note["at"]), len(out)), note)
    return out


def who_name(name: str | None) -> str:
    """Return a person's name, or "monitor X" for "monitor:X"."""
    name = (name or "").strip()
    return "monitor " + name.split(":", 1)[1].strip() if name.lower().startswith("monitor:") else name


def deploy_events(pack: EvidencePack, suspects: tuple[Suspect, ...]) -> list[tuple[datetime, str, list[str]]]:
    """Describe the window's deploys of the incident's services (and named suspects) as (at, text, evidence)."""
    ranked = {s.deploy_id: (place, s) for place, s in enumerate(suspects, 1)}
    rolled = {d.id for d in rollback_deploys(pack)}
    onset = correlate.onset_metric(pack)
    events = []
    for deploy in pack.deploys:
        later = after_resolution(pack, deploy.deployed_at)
        if not (in_window(pack, deploy) or later) or not (affects_incident(pack, deploy) or deploy.id in ranked):
            continue
        text = f"Deploy of {deploy.service} {deploy.version} to {deploy.environment}"
        text += f" ({plural(len(deploy.commits), 'commit')})"
        evidence = [deploy.id]
        if deploy.id in ranked:
            place, suspect = ranked[deploy.id]
            text += f"; suspect #{place}, score {suspect.score:.2f}"
            evidence += list(suspect.commit_ids[:10])
        elif later:
            pass  # marked as after the resolution by the caller
        elif utc(deploy.deployed_at) > utc(pack.incident.started_at):
            text += " after the incident started, so not a suspect"
            text += " (rollback to an earlier version)" if deploy.id in rolled else ""
        elif onset is not None and utc(deploy.deployed_at) > utc(onset.onset):
            text += f" after {onset.series} had already changed ({onset.id}), so not a suspect"
        events.append((utc(deploy.deployed_at), text, evidence))
    return events


def metric_sentence(metric: MetricEvidence) -> str:
    """Describe a change point, e.g. "error_rate of checkout rose from 0.2% to 14% at 10:02"."""
    where = f" of {metric.service}" if metric.service else ""
    verb = "rose" if metric.direction == "up" else "fell"
    before, after = format_value(metric.before, metric), format_value(metric.after, metric)
    return f"{metric.series}{where} {verb} from {before} to {after} at {utc(metric.onset):%H:%M}"


def log_sentence(log: LogEvidence) -> str:
    """Describe a new or spiking log template with its counts."""
    where = f" in {log.service}" if log.service else ""
    template = clip(log.template, 200)
    if log.new:
        return (f"New log template{where}: “{template}” ({plural(log.incident_count, 'line')} in the incident "
                "window, none before)")
    ratio = f"{log.spike_ratio:.0f}×" if log.spike_ratio is not None else "sharply"
    return (f"Log template{where} spiked {ratio}: “{template}” ({plural(log.incident_count, 'line')}, "
            f"{log.baseline_count} in the baseline)")


def format_value(value: float, metric: MetricEvidence) -> str:
    """Format a metric value with its unit (ratios of error-like series as percentages)."""
    unit = metric.unit.strip()
    lowered = unit.lower()
    name = metric.series.lower()
    if lowered in ("%", "percent"):
        return f"{_number(value)}%"
    if lowered in ("ratio", "fraction", "percentunit") or (
        not unit and any(w in name for w in ("error", "ratio", "fraction", "percent"))
        and 0 <= metric.before <= 1 and 0 <= metric.after <= 1
    ):
        return f"{_number(value * 100)}%"
    if lowered in ("bytes", "byte", "b"):
        for size in ("B", "KB", "MB", "GB", "TB"):
            if abs(value) < 1024 or size == "TB":
                return f"{_number(value)} {size}"
            value /= 1024
    if lowered in ("s", "seconds") and abs(value) < 1:
        return f"{_number(value * 1000)} ms"
    return f"{_number(value)} {unit}".strip()


def _number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    return text if "e" not in text else f"{value:.6f}".rstrip("0").rstrip(".")


def _chosen_metrics(pack: EvidencePack) -> list[MetricEvidence]:
    ordered = sorted(pack.metrics, key=lambda m: (not correlate.on_incident_services(pack, m.service), m.onset, m.id))
    return ordered[:MAX_METRIC_ROWS]


def _chosen_logs(pack: EvidencePack) -> list[LogEvidence]:
    errors = {g.id for g in correlate.error_logs(pack)}
    ordered = sorted(pack.logs, key=lambda g: (g.id not in errors, not g.new, -g.incident_count, g.id))
    return ordered[:MAX_LOG_ROWS]


def _deduplicated(rows: list[dict]) -> list[dict]:
    seen: set = set()
    out = []
    for row in rows:
        keys = {("text", row["at"], row["source"], row["description"])}
        if row["evidence"]:
            keys.add(("cites", row["source"], tuple(row["evidence"])))
        if keys & seen:
            continue
        seen |= keys
        out.append(row)
    return out
