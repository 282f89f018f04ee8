"""Detection: when impact began, when a system or a person first noticed, which monitors stayed silent, what flapped.

- Onset: the earliest of the recorded start, the first metric change point on the incident's services (up to 30
  minutes before the start, correlate.ONSET_LOOKBACK), the first sizeable error burst, and a monitor's first failed
  check.
- Detection: the earliest of an alert firing, a monitor going down, the incident being opened and the first human
  update. The opening counts at the time its row was written when that is known and plausible (at or before the
  resolution): an incident opened late is usually back-dated to when impact began, and only the write time shows
  the delay. Records written after the resolution (back-filled history) fall back to the recorded time.
- Silent monitors: monitors configured on the incident's services that reported nothing during it.
- Flapping: a monitor that went down, or an alert that started firing, FLAP_MIN_CYCLES times or more.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from blametrail.analysis import correlate
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.text import clip
from blametrail.analysis.times import minutes_between, utc

FLAP_MIN_CYCLES = 3  # down/up (or firing/resolved) cycles during one incident that count as flapping
_OPENED = frozenset({"open", "opened", "triggered", "created", "firing"})
_SYSTEM_ACTORS = ("monitor:", "alert:")


@dataclass(frozen=True)
class Signal:
    """A moment in the evidence: what happened, when, and the id that shows it (None for the recorded start)."""

    kind: str  # "start" | "metric" | "log" | "monitor" | "alert" | "status" | "update"
    at: datetime
    id: str | None
    text: str  # a phrase, e.g. "error_rate of checkout rose", "alert HighErrorRate fired"


@dataclass(frozen=True)
class Flap:
    """A monitor or alert that went back and forth during the incident."""

    what: str  # "monitor api-health" | "alert HighErrorRate"
    cycles: int
    ids: tuple[str, ...]
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Detection:
    """How the incident was noticed, from the evidence."""

    onset: Signal
    detected: Signal | None  # the first sign that a system or a person noticed
    first_automated: Signal | None  # the first alert or monitor
    first_human: Signal | None  # the opening by a person, or the first update
    opened: Signal | None
    opened_by_person: bool
    minutes_to_detect: int | None
    silent_monitors: tuple[str, ...]
    flapping: tuple[Flap, ...]


def analyse_detection(pack: EvidencePack) -> Detection:
    """Find the onset, the first detection (automated and human), silent monitors and flapping signals."""
    inc = pack.incident
    end = utc(inc.resolved_at) if inc.resolved_at else None
    onset = _onset(pack)
    opened, by_person = _opened(pack, end)
    services = {s for s in inc.services if s.strip()}
    automated = [Signal("alert", utc(a.at), a.id, f"alert {clip(a.name, 80)} fired")
                 for a in pack.alerts if a.status == "firing" and (not services or not a.service
                                                                   or a.service in services)]
    automated += [Signal("monitor", utc(m.at), m.id, f"monitor {clip(m.monitor, 80)} reported it down")
                  for m in pack.monitor_events if m.state == "down"]
    if opened is not None and not by_person:
        automated.append(opened)
    human = [opened] if opened is not None and by_person else []
    human += [Signal("update", utc(u.at), u.id, f"the first update was posted{_by(u.author)}")
              for u in pack.updates if end is None or utc(u.at) <= end]
    first_automated = min(automated, key=_order, default=None)
    first_human = min(human, key=_order, default=None)
    detected = min([s for s in (first_automated, first_human) if s is not None], key=_order, default=None)
    return Detection(
        onset=onset, detected=detected, first_automated=first_automated, first_human=first_human, opened=opened,
        opened_by_person=by_person,
        minutes_to_detect=minutes_between(onset.at, detected.at) if detected is not None else None,
        silent_monitors=_silent(pack), flapping=_flapping(pack),
    )


def _order(signal: Signal) -> tuple:
    return (signal.at, signal.id or "")


def _by(author: str | None) -> str:
    return f" by {author}" if author else ""


def _onset(pack: EvidencePack) -> Signal:
    candidates = [Signal("start", utc(pack.incident.started_at), None, "it started")]
    metric = correlate.onset_metric(pack)
    if metric is not None:
        where = f" of {metric.service}" if metric.service else ""
        verb = "rose" if metric.direction == "up" else "fell"
        candidates.append(Signal("metric", utc(metric.onset), metric.id, f"{metric.series}{where} {verb}"))
    burst = correlate.onset_log(pack)
    if burst is not None and burst.first_seen is not None:
        where = f" in {burst.service}" if burst.service else ""
        candidates.append(Signal("log", utc(burst.first_seen), burst.id, f"new errors appeared{where}"))
    for event in pack.monitor_events:
        if event.state == "down" and event.first_failure_at is not None:
            candidates.append(Signal("monitor", utc(event.first_failure_at), event.id,
                                     f"monitor {clip(event.monitor, 80)} saw its first failed check"))
    rank = {"metric": 0, "monitor": 1, "log": 2, "start": 3}
    return min(candidates, key=lambda s: (s.at, rank[s.kind]))


def _opened(pack: EvidencePack, end: datetime | None) -> tuple[Signal | None, bool]:
    """Return the opening (at its plausible write time) and whether a person opened it."""
    opening = min((s for s in pack.status_changes if s.status.strip().lower() in _OPENED),
                  key=lambda s: (utc(s.at), s.id), default=None)
    source = (pack.incident.source or "manual").strip().lower()
    if opening is None:
        return None, source == "manual"
    actor = (opening.actor or "").strip()
    by_person = source == "manual" and not actor.lower().startswith(_SYSTEM_ACTORS)
    at = utc(opening.at)
    written = utc(opening.recorded_at) if opening.recorded_at is not None else None
    if written is not None and written > at and (end is None or written <= end):
        at = written
    who = f" by {actor}" if actor and by_person else ""
    text = f"the incident was opened{who}" if by_person else f"{actor or source} opened the incident"
    return Signal("status", at, opening.id, text), by_person


def _silent(pack: EvidencePack) -> tuple[str, ...]:
    services = {s for s in pack.incident.services if s.strip()}
    reported = {m.monitor for m in pack.monitor_events}
    return tuple(sorted({m.name for m in pack.monitors
                         if m.enabled and (not services or m.service in services) and m.name not in reported}))


def _flapping(pack: EvidencePack) -> tuple[Flap, ...]:
    """Return monitors and alerts that started failing FLAP_MIN_CYCLES times or more."""
    starts: dict[str, list] = defaultdict(list)
    last_state: dict[str, str] = {}
    events = [(utc(m.at), m.id, f"monitor {clip(m.monitor, 80)}", m.state == "down") for m in pack.monitor_events]
    events += [(utc(a.at), a.id, f"alert {clip(a.name, 80)}", a.status == "firing") for a in pack.alerts]
    for at, ident, what, failing in sorted(events):
        if failing and last_state.get(what) != "failing":
            starts[what].append((at, ident))
        last_state[what] = "failing" if failing else "ok"
    return tuple(Flap(what, len(found), tuple(i for _, i in found), found[0][0], found[-1][0])
                 for what, found in sorted(starts.items()) if len(found) >= FLAP_MIN_CYCLES)
