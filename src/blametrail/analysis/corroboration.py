"""How observability findings speak for or against a suspect deploy: onset timing, error links, other causes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from blametrail.analysis import causes, correlate
from blametrail.analysis.causes import Category
from blametrail.analysis.evidence import DeployEvidence, EvidencePack
from blametrail.analysis.ids import sort_key
from blametrail.analysis.observations import LogEvidence, MetricEvidence
from blametrail.analysis.text import plural
from blametrail.analysis.times import minutes_between, utc

NEAR_ONSET = timedelta(minutes=10)
QUIET_AFTER = timedelta(minutes=30)
_W_NEAR_ONSET, _W_LATE, _W_QUIET = 0.1, -0.1, -0.15
_W_FILE, _W_MODULE, _W_MORE_FILES, _W_WORD, _MAX_WORDS = 0.35, 0.25, 0.05, 0.05, 4
_W_UNLINKED, _W_EXTERNAL, _W_INTERNAL = -0.1, -0.2, -0.1


@dataclass(frozen=True)
class Findings:
    """What the pack's observability findings say about the incident as a whole (computed once per pack)."""

    observed: bool
    onset: datetime
    onset_metric: MetricEvidence | None
    onset_log: LogEvidence | None  # the first error burst, which marks the onset when no metric does
    errors: tuple[LogEvidence, ...]
    category: Category | None


@dataclass(frozen=True)
class Corroboration:
    """The score change, reasons and cited findings for one deploy."""

    delta: float
    reasons: tuple[str, ...]
    strength: str  # of its links to error templates: "strong" | "medium" | "weak" | "none"
    commit_hits: tuple[tuple[str, int], ...]  # (commit id, relevance) for commits the errors point at
    evidence_ids: tuple[str, ...]  # metric and log ids that support the deploy as the trigger


def findings(pack: EvidencePack) -> Findings:
    """Summarise the pack's observability findings: onset, error templates and the dominant category."""
    return Findings(
        observed=correlate.observed(pack), onset=correlate.incident_onset(pack),
        onset_metric=correlate.onset_metric(pack), onset_log=correlate.onset_log(pack),
        errors=correlate.error_logs(pack),
        category=causes.dominant(pack),
    )


def metric_phrase(metric: MetricEvidence) -> str:
    """Describe a change point briefly, e.g. "error_rate rose (metric_1)"."""
    return f"{metric.series} {'rose' if metric.direction == 'up' else 'fell'} ({metric.id})"


def corroborate(pack: EvidencePack, deploy: DeployEvidence, found: Findings) -> Corroboration:
    """Weigh a deploy against the findings: metrics moving right after it, errors naming its changes."""
    if not found.observed:
        return Corroboration(0.0, (), "none", (), ())
    delta, reasons, cited = 0.0, [], []
    following = correlate.next_onset(pack, deploy.deployed_at)
    gap = utc(following.onset) - utc(deploy.deployed_at) if following is not None else None
    tied = correlate.links(pack, deploy, found.errors)
    strength = correlate.strength(tied)
    if following is not None and gap is not None and gap <= NEAR_ONSET:
        delta += _W_NEAR_ONSET
        if following != found.onset_metric:  # the onset itself is already named with the time to onset
            minutes = minutes_between(deploy.deployed_at, following.onset)
            reasons.append(f"{metric_phrase(following)} {plural(minutes, 'minute')} after it")
        cited.append(following.id)
    elif strength == "none" and gap is not None and gap <= QUIET_AFTER:
        delta += _W_LATE
        minutes = minutes_between(deploy.deployed_at, following.onset)
        reasons.append(f"the metrics changed {plural(minutes, 'minute')} after it, late for a trigger")
    elif strength == "none":
        delta += _W_QUIET
        reasons.append("no metric changed within 30 minutes after it" if found.errors
                       else "no metric change or new error followed it within 30 minutes")
    files = [k for k in tied if k.kind in ("file", "module")]
    if files:
        first = files[0]
        delta += _W_FILE if first.kind == "file" else _W_MODULE
        delta += _W_MORE_FILES * min(2, len({k.detail for k in files}) - 1)
        what = "the new error template" if _log(found, first.log_id).new else "the spiking error template"
        reasons.append(f"touched {first.detail} which appears in {what} {first.log_id}")
    words = sorted({w for k in tied if k.kind == "words" for w in k.detail.split(", ")})[:_MAX_WORDS]
    if words:
        delta += _W_WORD * len(words)
        ids = sorted({k.log_id for k in tied if k.kind == "words"}, key=sort_key)[:3]
        reasons.append(f"its commits share words with error templates {', '.join(ids)}: {', '.join(words)}")
    if found.errors and strength == "none":
        delta += _W_UNLINKED
        ids = ", ".join(g.id for g in found.errors[:3])
        reasons.append(f"none of its commits' files or words appear in the new errors ({ids})")
    category = found.category
    if category is not None and category.external and strength in ("weak", "none"):
        delta += _W_EXTERNAL
        reasons.append(f"the errors point to {category.label} ({', '.join(_ids(category))}), "
                       "which its changes do not explain")
    elif category is not None and not category.external and strength == "none":
        delta += _W_INTERNAL
        reasons.append(f"the errors point to {category.label} ({', '.join(_ids(category))}) "
                       "without naming its changes")
    hits: dict[str, int] = {}
    for k in tied:
        hits[k.commit_id] = hits.get(k.commit_id, 0) + (3 if k.kind != "words" else 1)
    cited += sorted({k.log_id for k in tied}, key=sort_key)
    return Corroboration(round(delta, 3), tuple(reasons), strength, tuple(hits.items()), tuple(dict.fromkeys(cited)))


def _log(found: Findings, log_id: str) -> LogEvidence:
    return next(g for g in found.errors if g.id == log_id)


def _ids(category: Category) -> list[str]:
    return [*category.log_ids[:3], *category.metric_ids[:2]]
