"""Monitor and alert evidence: timeline rows and the impact they measured (pure)."""

from __future__ import annotations

from datetime import datetime

from blametrail.analysis.evidence import AlertEvidence, EvidencePack, MonitorEvidence
from blametrail.analysis.text import clip, plural
from blametrail.analysis.times import minutes_between, stamp, utc


def _kinds(event: MonitorEvidence) -> str:
    return ", ".join(f"{kind} ×{count}" for kind, count in sorted(event.error_kinds, key=lambda kc: (-kc[1], kc[0])))


def _share(event: MonitorEvidence) -> str:
    if not event.total_checks:
        return ""
    return f"{event.failed_checks} of {event.total_checks} checks failed ({event.failed_checks / event.total_checks:.0%})"


def monitor_row(event: MonitorEvidence) -> tuple[datetime, str, list[str]]:
    """Return (time, description, evidence) of a monitor state change for the timeline."""
    if event.state == "down":
        first = f" since {stamp(event.first_failure_at)}" if event.first_failure_at else ""
        kinds = f"; errors: {_kinds(event)}" if event.error_kinds else ""
        last = f"; last error: {clip(event.last_error, 160)}" if event.last_error else ""
        return utc(event.at), f"Monitor {event.monitor} reported the service down (failing{first}{kinds}{last})", [event.id]
    share = _share(event)
    detail = f"; during the outage {share}" if share else ""
    return utc(event.at), f"Monitor {event.monitor} recovered{detail}", [event.id]


def alert_row(alert: AlertEvidence) -> tuple[datetime, str, list[str]]:
    """Return (time, description, evidence) of an alert transition for the timeline."""
    where = f" on {alert.service}" if alert.service else ""
    what = f": {clip(alert.summary, 200)}" if alert.summary.strip() else ""
    return utc(alert.at), f"Alert {clip(alert.name, 120)} {alert.status}{where}{what}", [alert.id]


def timeline_rows(pack: EvidencePack) -> list[tuple[datetime, str, str, list[str]]]:
    """Return (time, source, description, evidence) rows for every monitor and alert event."""
    rows = [(at, "monitor", text, ev) for at, text, ev in map(monitor_row, pack.monitor_events)]
    rows += [(at, "alert", text, ev) for at, text, ev in map(alert_row, pack.alerts)]
    return rows


def impact_sentences(pack: EvidencePack) -> list[str]:
    """Return what monitors and alerts measured about the impact, with citations."""
    out: list[str] = []
    recoveries = [m for m in pack.monitor_events if m.state == "up"]
    for m in recoveries:
        window = ""
        if m.first_failure_at and m.recovered_at:
            minutes = minutes_between(m.first_failure_at, m.recovered_at)
            window = (f" from {stamp(m.first_failure_at)} to {stamp(m.recovered_at)} "
                      f"({plural(minutes, 'minute')})")
        share = _share(m)
        kinds = f"; errors: {_kinds(m)}" if m.error_kinds else ""
        out.append(f"Monitor {m.monitor} saw the service failing{window}"
                   f"{'; ' + share if share else ''}{kinds} (evidence: {m.id}).")
    if not recoveries:
        for m in pack.monitor_events:
            if m.state == "down":
                out.append(f"Monitor {m.monitor} reported the service down (evidence: {m.id}).")
    firing = [a for a in pack.alerts if a.status == "firing"]
    if firing:
        names = sorted({a.name for a in firing})
        cites = ", ".join(a.id for a in firing[:5])
        out.append(f"{plural(len(names), 'alert')} fired: {', '.join(clip(n, 80) for n in names[:5])} (evidence: {cites}).")
    return out
