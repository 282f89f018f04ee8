"""The live incident summary's shape, its built-in writer (pure) and the grounding of a model's summary."""

from __future__ import annotations

import logging
import re

from pydantic import BaseModel, ConfigDict, Field

from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.ids import ID_PATTERN
from blametrail.analysis.suspects import describe_suspect
from blametrail.analysis.text import clip
from blametrail.analysis.verdict import ranked_suspects
from blametrail.clock import stamp
from blametrail.engines.grounding import UNVERIFIED
from blametrail.errors import UpstreamError

log = logging.getLogger(__name__)

_TEXT = 4_000
_ITEMS = 20
_TRIED = re.compile(
    r"\b(?:roll(?:ed|ing)?[ -]?back|revert(?:ed|ing)?|restart(?:ed|ing)?|reboot(?:ed)?|scal(?:ed|ing)|fail(?:ed)?[ -]?over|"
    r"disabl(?:ed|ing)|enabl(?:ed|ing)|flush(?:ed|ing)|purg(?:ed|ing)|drain(?:ed|ing)|increas(?:ed|ing)|"
    r"decreas(?:ed|ing)|patch(?:ed|ing)|hotfix(?:ed)?|redeploy(?:ed|ing)?|tried|trying|mitigat(?:ed|ing)|"
    r"block(?:ed|ing)|rotat(?:ed|ing)|clear(?:ed|ing)|bump(?:ed|ing)|kill(?:ed|ing))\b", re.I)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CitedText(_Strict):
    text: str = Field(..., min_length=1, max_length=_TEXT)
    evidence: list[str] = Field(..., min_length=1, max_length=20)


class SummaryOut(_Strict):
    """A short, cited live summary of an open incident."""

    what_is_happening: str = Field("", max_length=_TEXT)
    impact_so_far: str = Field("", max_length=_TEXT)
    suspects: list[CitedText] = Field(default_factory=list, max_length=_ITEMS)
    tried: list[CitedText] = Field(default_factory=list, max_length=_ITEMS)
    citations: list[str] = Field(default_factory=list, max_length=500)


# --- the built-in writer (pure) ------------------------------------------------------------------------

def _cite(ids) -> str:
    ids = list(dict.fromkeys(i for i in ids if i))
    return f" (evidence: {', '.join(ids)})" if ids else ""


def write_summary(pack: EvidencePack) -> dict:
    """Write the summary from the evidence alone: updates, alerts, monitors, ranked suspects, metric and log findings."""
    inc = pack.incident
    updates = sorted(pack.updates, key=lambda u: (u.at, u.id))
    happening: list[str] = []
    state = "was resolved" if inc.resolved_at else "is open"
    happening.append(f"{inc.title} {state}" + (f" ({inc.severity})" if inc.severity else "") +
                     f", started {stamp(inc.started_at)}" + _cite(s.id for s in pack.status_changes[:1]) + ".")
    if updates:
        last = updates[-1]
        happening.append(f"Latest update ({stamp(last.at)}, {last.author or 'unknown'}): “{clip(last.body, 300)}”"
                         + _cite([last.id]) + ".")
    firing = [a for a in pack.alerts if a.status == "firing"]
    if firing:
        names = ", ".join(dict.fromkeys(a.name for a in firing[:5]))
        happening.append(f"Alerts firing: {names}" + _cite(a.id for a in firing[:5]) + ".")
    down = [m for m in pack.monitor_events if m.state == "down"]
    if down:
        happening.append("Monitors down: " + ", ".join(dict.fromkeys(m.monitor for m in down[:5]))
                         + _cite(m.id for m in down[:5]) + ".")

    impact: list[str] = []
    minutes = max(0, int(((inc.resolved_at or pack.window_end) - inc.started_at).total_seconds() // 60))
    impact.append(f"{minutes} minutes so far" if not inc.resolved_at else f"Lasted {minutes} minutes")
    impact[-1] += f", affecting {', '.join(inc.services)}." if inc.services else "; no services recorded."
    for m in sorted(pack.metrics, key=lambda m: -abs(m.magnitude))[:3]:
        unit = f" {m.unit}" if m.unit else ""
        impact.append(f"{m.series} went {m.direction} from {m.before:g}{unit} to {m.after:g}{unit} at {stamp(m.onset)}"
                      + _cite([m.id]) + ".")
    for m in down[:3]:
        if m.total_checks:
            impact.append(f"{m.monitor}: {m.failed_checks} of {m.total_checks} checks failed" + _cite([m.id]) + ".")
    new_logs = [g for g in pack.logs if g.new or (g.spike_ratio or 0) >= 2][:3]
    for g in new_logs:
        change = "new" if g.new else f"×{g.spike_ratio:.1f}"
        impact.append(f"Log errors ({change}, {g.incident_count} times): {clip(g.template, 160)}" + _cite([g.id]) + ".")

    suspects = []
    try:
        ranked = ranked_suspects(pack)
    except Exception:  # why: a ranking failure must not cost the team the rest of the summary
        log.exception("ranking suspects for the summary failed")
        ranked = ()
    for s in ranked[:3]:
        text, cited = describe_suspect(pack, s)
        reasons = "; ".join(s.reasons[:3])
        suspects.append({"text": clip(f"{text[:1].upper()}{text[1:]}" + (f": {reasons}" if reasons else ""), 600),
                         "evidence": list(dict.fromkeys([s.deploy_id, *cited, *s.update_ids]))[:20]})

    tried = [{"text": clip(u.body, 300), "evidence": [u.id]} for u in updates if _TRIED.search(u.body)][-5:]
    out = {"what_is_happening": " ".join(happening)[:_TEXT], "impact_so_far": " ".join(impact)[:_TEXT],
           "suspects": suspects, "tried": tried}
    out["citations"] = _citations(out, pack.evidence_ids())
    return SummaryOut.model_validate(out).model_dump()


def _citations(out: dict, valid: set[str]) -> list[str]:
    found = ID_PATTERN.findall(out.get("what_is_happening", "") + " " + out.get("impact_so_far", ""))
    for item in (*out.get("suspects", ()), *out.get("tried", ())):
        found += item["evidence"]
    return [i for i in dict.fromkeys(found) if i in valid]


# --- grounding of model output ----------------------------------------------------------------------------

def ground_summary(raw: dict, pack: EvidencePack) -> dict:
    """Validate a model's summary: drop unknown ids, items that cite nothing valid, and keys outside the schema."""
    if not isinstance(raw, dict):
        raise UpstreamError("The model's answer was not a JSON object.")
    valid = pack.evidence_ids()

    def text(value, limit=_TEXT) -> str:
        if not isinstance(value, str):
            return ""
        return ID_PATTERN.sub(lambda m: m.group(0) if m.group(0) in valid else UNVERIFIED, value)[:limit].strip()

    def items(value) -> list[dict]:
        out = []
        for entry in value if isinstance(value, list) else []:
            if not isinstance(entry, dict):
                continue
            evidence = entry.get("evidence")
            evidence = [str(i) for i in (evidence if isinstance(evidence, list) else []) if str(i) in valid]
            body = text(entry.get("text"))
            if body and evidence:
                out.append({"text": body, "evidence": list(dict.fromkeys(evidence))[:20]})
        return out[:_ITEMS]

    out = {"what_is_happening": text(raw.get("what_is_happening")), "impact_so_far": text(raw.get("impact_so_far")),
           "suspects": items(raw.get("suspects")), "tried": items(raw.get("tried"))}
    listed = raw.get("citations") if isinstance(raw.get("citations"), list) else []
    out["citations"] = list(dict.fromkeys([*_citations(out, valid), *(str(i) for i in listed if str(i) in valid)]))
    return SummaryOut.model_validate(out).model_dump()
