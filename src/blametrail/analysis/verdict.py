"""The analysis verdict: ranked suspects, the root-cause category and one ranked list of causes (writer, evaluation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from blametrail.analysis import causes, correlate
from blametrail.analysis.causes import STRONG_SCORE, Category
from blametrail.analysis.corroboration import corroborate, findings
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.response import ResponseFacts
from blametrail.analysis.suspects import Suspect, find_deploy, rank_suspects, standout
from blametrail.analysis.text import clip, plural
from blametrail.analysis.timeline import metric_sentence
from blametrail.analysis.times import utc


@dataclass(frozen=True)
class Cause:
    """One candidate cause, a deploy or a signal category, with its score, reasons and evidence."""

    kind: str  # "deploy" | "category"
    key: str  # the deploy's evidence id, or the category key ("certificate", "dns", …)
    label: str
    score: float
    reasons: tuple[str, ...]
    evidence_ids: tuple[str, ...]


def ranked_suspects(pack: EvidencePack) -> tuple[Suspect, ...]:
    """Return the deploys ranked as suspects, best first, each with its score and reasons."""
    return rank_suspects(pack)


def incident_onset(pack: EvidencePack) -> datetime:
    """Return when the incident began: the earliest significant metric onset, else the incident start."""
    return correlate.incident_onset(pack)


def dominant_category(pack: EvidencePack, suspects: tuple[Suspect, ...] | None = None) -> Category | None:
    """Return the category the root cause names: the dominant one, when no deploy stands out."""
    if standout(rank_suspects(pack) if suspects is None else suspects) is not None:
        return None
    return causes.dominant(pack)


def root_cause_category(pack: EvidencePack) -> str | None:
    """Return the key of the category the root cause names ("certificate", "dns", …), or None."""
    category = dominant_category(pack)
    return category.key if category is not None else None


def ranked_causes(pack: EvidencePack) -> tuple[Cause, ...]:
    """Return deploys and categories as one ranked list: the named cause first, then by score."""
    suspects = rank_suspects(pack)
    top, category = standout(suspects), dominant_category(pack, suspects)
    items = [
        Cause("deploy", s.deploy_id, _deploy_label(pack, s), s.score, s.reasons, (s.deploy_id, *s.evidence_ids))
        for s in suspects
    ]
    items += [Cause("category", c.key, c.label, c.score, c.reasons, (*c.log_ids, *c.metric_ids))
              for c in causes.categorise(pack)]
    named = top.deploy_id if top else category.key if category else None
    return tuple(sorted(items, key=lambda c: (c.key != named, -c.score, c.kind, c.key)))


def link_strength(pack: EvidencePack, suspect: Suspect) -> str:
    """Return how strongly the error templates point at a suspect's commits ("strong" … "none")."""
    deploy = find_deploy(pack, suspect.deploy_id)
    return corroborate(pack, deploy, findings(pack)).strength if deploy is not None else "none"


def supporting(pack: EvidencePack, evidence_ids: tuple[str, ...], limit: int = 4) -> list[str]:
    """Describe metric and log findings by id, each with its citation."""
    metrics = {m.id: m for m in pack.metrics}
    logs = {g.id: g for g in pack.logs}
    out = []
    for evidence_id in evidence_ids:
        if evidence_id in metrics:
            out.append(f"{metric_sentence(metrics[evidence_id])} (evidence: {evidence_id})")
        elif evidence_id in logs:
            g = logs[evidence_id]
            kind = "new" if g.new else "spiking"
            since = f" from {utc(g.first_seen):%H:%M}" if g.first_seen else ""
            out.append(f"{kind} log template “{clip(g.template, 160)}” ({plural(g.incident_count, 'line')}{since}) "
                       f"(evidence: {evidence_id})")
        if len(out) >= limit:
            break
    return out


def scores(suspects: tuple[Suspect, ...]) -> str:
    """List the top suspects' scores, e.g. "deploy_4 scored 0.31"."""
    return ", ".join(f"{s.deploy_id} scored {s.score:.2f}" for s in suspects[:3])


def missing(pack: EvidencePack, facts: ResponseFacts, suspects: tuple[Suspect, ...]) -> list[str]:
    """List what the evidence lacks for a root cause."""
    gaps = ["no human updates were posted" if facts.update_count == 0 else "no update states a cause"]
    if not suspects:
        gaps.append("no deploy of the affected services was recorded in the window before onset")
    else:
        gaps.append(f"no suspect deploy stands out ({scores(suspects)})")
    onset = correlate.onset_metric(pack)
    if onset is not None:
        gaps.append(f"{metric_sentence(onset)} (evidence: {onset.id}), but no log pattern or deploy "
                    "explains it")
    elif correlate.observed(pack) and not pack.logs:
        gaps.append("metrics and logs show no clear change")
    return gaps


def confidence(
    pack: EvidencePack, facts: ResponseFacts, suspects: tuple[Suspect, ...], top: Suspect | None,
    category: Category | None, corroborated: bool, severity_note: str | None,
) -> dict:
    """Grade confidence in the root cause from the strength of the evidence, with the reason."""
    cause = facts.cause
    linked = top is not None and not top.update_ids and link_strength(pack, top) == "strong"
    if top is not None and cause is not None and corroborated:
        level = "high"
        reason = (f"An update states the cause ({cause.update_id}) and the top suspect {top.deploy_id} "
                  f"(score {top.score:.2f}) agrees with it: {'; '.join(top.reasons)}.")
    elif top is not None and cause is not None:
        level = "medium"
        reason = (f"An update states a cause ({cause.update_id}) and {top.deploy_id} stands out, but they do not "
                  "clearly agree. An update tying the cause to a specific change would raise confidence.")
    elif top is not None and top.update_ids:
        level = "high"
        reason = (f"The top suspect {top.deploy_id} (score {top.score:.2f}) stands out and updates "
                  f"{', '.join(top.update_ids)} point at it: {'; '.join(top.reasons)}. An update stating "
                  "the cause in words would confirm it.")
    elif top is not None and linked and {m.id for m in pack.metrics} & set(top.evidence_ids):
        level = "high"
        reason = (f"The top suspect {top.deploy_id} (score {top.score:.2f}) stands out, the metrics changed right "
                  f"after it and the new errors name its changes ({', '.join(top.evidence_ids)}): "
                  f"{'; '.join(top.reasons)}. An update confirming the cause would settle it.")
    elif top is not None and linked:
        level = "medium"
        reason = (f"The top suspect {top.deploy_id} (score {top.score:.2f}) stands out and the new errors name its "
                  f"changes ({'; '.join(top.reasons)}), but no metric change point or update confirms the timing.")
    elif top is not None:
        level = "medium"
        reason = (f"The top suspect {top.deploy_id} (score {top.score:.2f}) stands out on time and scope "
                  f"({'; '.join(top.reasons)}), but no update confirms it. An update naming the cause, "
                  "or logs and metrics tying the errors to its commits, would raise confidence.")
    elif cause is not None:
        level = "medium"
        reason = (f"An update states the cause ({cause.update_id}), but no deploy in the window corroborates "
                  "it. Linking the change that introduced it would raise confidence.")
    elif category is not None:
        level = "medium" if category.score >= STRONG_SCORE else "low"
        strength = "strongly" if level == "medium" else "only weakly"
        reason = (f"The findings {strength} point to {category.label} (score {category.score:.2f}: "
                  f"{'; '.join(category.reasons)}), and no deploy stands out. An update confirming it would "
                  "raise confidence.")
    else:
        level = "low"
        reason = (f"Evidence is thin: {'; '.join(missing(pack, facts, suspects))}. Updates that state the cause, "
                  "or deploys of the affected services recorded before onset, would raise confidence.")
    if cause is not None and cause.hedged and reason.startswith("An update states"):
        # why: "probably caused by …" is a working explanation, not a finding; it never carries high confidence
        level = "medium" if level == "high" else level
        reason += f" The update hedges (“{clip(cause.sentence, 80)}”), so it reads as a working explanation."
    if severity_note:
        reason += " " + severity_note
    return {"level": level, "reason": reason}


def _deploy_label(pack: EvidencePack, suspect: Suspect) -> str:
    deploy = find_deploy(pack, suspect.deploy_id)
    return f"deploy {deploy.version} of {deploy.service}" if deploy is not None else suspect.deploy_id
