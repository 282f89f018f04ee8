"""The real-incident report: per-incident rows, dev / held-out / all summaries, thresholds with PASS/FAIL."""

from __future__ import annotations

from dataclasses import dataclass

from blametrail.scenarios.real.score import Outcome

SEVERITY_RANK = {"SEV-1": 1, "SEV-2": 2, "SEV-3": 3, "SEV-4": 4}


@dataclass(frozen=True)
class Summary:
    """Aggregates over a set of outcomes (None where nothing applies)."""

    n: int
    failures: int  # replays that produced no draft
    duration_exact: float | None
    key_recall: float | None  # cited key events / key events, over the whole set
    order: float | None  # mean over incidents that have an order score
    invented: int  # rows, summed
    severity_exact: float | None
    severity_within_one: float | None
    cause: float | None  # mean
    trigger: float | None  # share of incidents with a recorded trigger whose root cause cites it
    factors: float | None  # matched expected factors / expected factors
    actions: float | None  # matched expected action items / expected action items


def summarize(outcomes: list[Outcome] | tuple[Outcome, ...]) -> Summary:
    """Summarize outcomes."""
    n = len(outcomes)
    ordered = [o.order for o in outcomes if o.order is not None]
    triggers = [o.trigger_cited for o in outcomes if o.trigger_cited is not None]
    key_total = sum(o.key_total for o in outcomes)
    factors_total = sum(o.factors_total for o in outcomes)
    actions_total = sum(o.actions_total for o in outcomes)
    return Summary(
        n=n, failures=sum(o.error is not None for o in outcomes),
        duration_exact=_share(o.duration_exact for o in outcomes),
        key_recall=sum(o.key_cited for o in outcomes) / key_total if key_total else None,
        order=sum(ordered) / len(ordered) if ordered else None,
        invented=sum(o.invented for o in outcomes),
        severity_exact=_share(o.severity_draft == o.severity_truth for o in outcomes),
        severity_within_one=_share(_within_one(o) for o in outcomes),
        cause=sum(o.cause for o in outcomes) / n if n else None,
        trigger=_share(triggers),
        factors=sum(o.factors_matched for o in outcomes) / factors_total if factors_total else None,
        actions=sum(o.actions_matched for o in outcomes) / actions_total if actions_total else None,
    )


def _share(values) -> float | None:
    values = list(values)
    return sum(bool(v) for v in values) / len(values) if values else None


def _within_one(o: Outcome) -> bool:
    drafted = SEVERITY_RANK.get(o.severity_draft or "")
    return drafted is not None and abs(drafted - SEVERITY_RANK[o.severity_truth]) <= 1


@dataclass(frozen=True)
class Threshold:
    label: str
    attr: str  # a Summary field
    op: str  # ">=" or "<="
    target: float


# The bar a run must clear, judged on the held-out incidents (on all of a run's incidents when it has none).
# Set from the held-out part only (never tuned on): structural figures exactly as measured (no failed replay, no
# invented row, every duration right); the others at the held-out figure rounded down to 0.05, less 0.05 (one
# held-out incident in ten moves a share by 0.10), never below 0. Measured on the built-in engine at commit 4e953f3,
# after the issue-13 analysis work (docs/evaluation.md, "After"; the "before" figures of dcc3006 are there too):
# re-derive them the same way when the analysis changes, from the held-out rows only.
THRESHOLDS = (
    Threshold("replays that produced no draft", "failures", "<=", 0),
    Threshold("invented timeline rows", "invented", "<=", 0),
    Threshold("duration within a minute", "duration_exact", ">=", 1.0),
    Threshold("key events cited", "key_recall", ">=", 0.95),  # held-out 1.00
    Threshold("key events in true order", "order", ">=", 0.95),  # 1.00
    Threshold("severity band exact", "severity_exact", ">=", 0.75),  # 0.80
    Threshold("severity band within one", "severity_within_one", ">=", 0.95),  # 1.00
    Threshold("root-cause terms found", "cause", ">=", 0.30),  # 0.38
    Threshold("triggering change cited", "trigger", ">=", 0.95),  # 1.00
    # why: held-out 0.00 (0 of 38); the rule gives -0.05, a share's floor is 0, so this one cannot fail yet
    Threshold("contributing factors matched", "factors", ">=", 0.0),
    Threshold("action items matched", "actions", ">=", 0.05),  # 0.11 (4 of 35)
)


@dataclass(frozen=True)
class RealReport:
    outcomes: tuple[Outcome, ...]
    seconds: float
    engine: str = "builtin"

    def summary(self, split: str | None = None) -> Summary:
        """Summarize one split's outcomes, or all of them."""
        return summarize([o for o in self.outcomes if split is None or o.split == split])

    def gate(self) -> tuple[str, Summary]:
        """Return which outcomes the thresholds judge (the held-out ones, else all) and their summary."""
        held = [o for o in self.outcomes if o.split == "holdout"]
        if held:
            return f"held-out ({len(held)} incidents)", summarize(held)
        return f"all ({len(self.outcomes)} incidents; none held out in this run)", self.summary()

    def checks(self, thresholds: tuple[Threshold, ...] = THRESHOLDS) -> list[tuple[Threshold, float | None, bool]]:
        """Return (threshold, value, passed) for every threshold, on the gated outcomes."""
        _, summary = self.gate()
        out = []
        for t in thresholds:
            value = getattr(summary, t.attr)
            ok = value is not None and (value >= t.target if t.op == ">=" else value <= t.target)
            out.append((t, value, ok))
        return out

    def passed(self, thresholds: tuple[Threshold, ...] = THRESHOLDS) -> bool:
        """Tell whether every threshold is met."""
        return all(ok for *_, ok in self.checks(thresholds))

    def table(self, thresholds: tuple[Threshold, ...] = THRESHOLDS) -> str:
        """Render the per-incident table, the summaries, the thresholds and the misses."""
        head = (f"{'incident':<38} {'split':<7} {'dur':>4} {'keys':>5} {'order':>5} {'inv':>3} {'sev':>5} "
                f"{'cause':>5} {'trig':>4} {'factors':>7} {'actions':>7}")
        lines = [f"BlameTrail real-incident evaluation: {len(self.outcomes)} incidents, engine {self.engine}", "",
                 head, "-" * len(head)]
        for o in self.outcomes:
            if o.error:
                lines.append(f"{o.incident[:38]:<38} {o.split:<7} FAILED: {o.error[:80]}")
                continue
            sev = f"{_band(o.severity_truth)}>{_band(o.severity_draft)}"
            lines.append(
                f"{o.incident[:38]:<38} {o.split:<7} {_dur(o):>4} {o.key_cited:>2}/{o.key_total:<2} "
                f"{_fmt(o.order):>5} {o.invented:>3} {sev:>5} {o.cause:>5.2f} {_yn(o.trigger_cited):>4} "
                f"{o.factors_matched:>3}/{o.factors_total:<3} {o.actions_matched:>3}/{o.actions_total:<3}")
        lines += ["", f"{'summary':<16} {'n':>3} {'fail':>4} {'dur ok':>6} {'keys':>5} {'order':>5} {'inv':>4} "
                      f"{'sev=':>5} {'sev±1':>5} {'cause':>5} {'trig':>5} {'factors':>7} {'actions':>7}"]
        for name, split in (("dev", "dev"), ("held-out", "holdout"), ("all", None)):
            s = self.summary(split)
            if s.n:
                lines.append(f"{name:<16} {s.n:>3} {s.failures:>4} {_fmt(s.duration_exact):>6} {_fmt(s.key_recall):>5} "
                             f"{_fmt(s.order):>5} {s.invented:>4} {_fmt(s.severity_exact):>5} "
                             f"{_fmt(s.severity_within_one):>5} {_fmt(s.cause):>5} {_fmt(s.trigger):>5} "
                             f"{_fmt(s.factors):>7} {_fmt(s.actions):>7}")
        gate, _ = self.gate()
        lines += ["", f"thresholds, judged on {gate}:", f"{'threshold':<36} {'value':>6} {'target':>8}  result"]
        for t, value, ok in self.checks(thresholds):
            lines.append(f"{t.label:<36} {_fmt(value):>6} {t.op + ' ' + format(t.target, 'g'):>8}  "
                         f"{'PASS' if ok else 'FAIL'}")
        lines += ["", "dur: minutes off the true duration (ok = within 1); keys: key events cited / key events; "
                      "order: share of cited key-event pairs in true order;",
                  "inv: timeline rows citing nothing the server holds or dated >5 min from it; sev: true band > drafted "
                  "band; cause: share of root-cause terms found;",
                  "trig: the root cause cites the recorded triggering change (- when none was recorded); "
                  "factors/actions: expected items matched / expected items.",
                  f"{len(self.outcomes)} incidents replayed over HTTP in {self.seconds:.1f} s."]
        return "\n".join(lines)

    def misses(self) -> str:
        """List, per incident, what the draft missed or invented (for reading failures)."""
        out = []
        for o in self.outcomes:
            parts = []
            if o.error:
                parts.append(f"replay failed: {o.error}")
            if o.missed_key:
                parts.append("missed key events: " + ", ".join(o.missed_key))
            parts += [f"invented row: {r}" for r in o.invented_rows]
            if o.severity_draft != o.severity_truth:
                parts.append(f"severity {o.severity_draft} (expected {o.severity_truth})")
            if o.trigger_cited is False:
                parts.append("root cause does not cite the triggering change")
            parts += [f"missed factor: {f}" for f in o.missed_factors]
            parts += [f"missed action: {a}" for a in o.missed_actions]
            if parts:
                out.append(f"{o.incident}:\n  " + "\n  ".join(parts))
        return "\n".join(out)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _band(severity: str | None) -> str:
    return severity[-1] if severity and severity in SEVERITY_RANK else "?"


def _dur(o: Outcome) -> str:
    if o.duration_error is None:
        return "?"
    return "ok" if o.duration_exact else f"{o.duration_error:.0f}"


def _yn(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
