"""How alike two incidents are, and why (pure): a fingerprint per incident and a weighted comparison.

A fingerprint holds what makes incidents recur: the services hit, the cause category the analysis settled on
("deploy" when a deploy stands out), the files of the suspect commits, the new or spiking log patterns (numbers and
ids masked), the alert names, and the words of the title and description. `compare` weighs the overlaps and says
which of them matched, in words a reader can check ("same suspect file: checkout/pool.py").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from blametrail.analysis import causes, suspects
from blametrail.analysis.evidence import EvidencePack

WEIGHTS = {"services": 0.30, "category": 0.25, "files": 0.20, "templates": 0.15, "alerts": 0.05, "terms": 0.05}
MAX_ITEMS = 12
_MASK = re.compile(r"<\*>|0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+(?:\.\d+)*|'[^']*'|\"[^\"]*\"", re.IGNORECASE)
_WORD = re.compile(r"[a-z][a-z0-9_-]{2,}")
_STOP = frozenset("""the and for with from into onto that this was were are has have had not but all any its our out
over under after before during when then than some more most less very via per across between about again
errors error failed failing failure incident issue outage down degraded elevated high""".split())


@dataclass(frozen=True)
class Fingerprint:
    services: frozenset[str] = frozenset()
    category: str | None = None
    files: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()
    alerts: frozenset[str] = frozenset()
    terms: frozenset[str] = frozenset()
    labels: dict = field(default_factory=dict, compare=False, hash=False)  # template key → a readable sample

    def to_json(self) -> dict:
        return {"services": sorted(self.services), "category": self.category, "files": sorted(self.files),
                "templates": sorted(self.templates), "alerts": sorted(self.alerts), "terms": sorted(self.terms),
                "labels": {k: v for k, v in self.labels.items() if k in self.templates}}

    @classmethod
    def from_json(cls, data: dict | None) -> Fingerprint:
        data = data or {}

        def s(key):
            return frozenset(str(x) for x in (data.get(key) or ()) if x)

        return cls(services=s("services"), category=data.get("category") or None, files=s("files"),
                   templates=s("templates"), alerts=s("alerts"), terms=s("terms"),
                   labels=dict(data.get("labels") or {}))


def terms(*texts: str | None) -> frozenset[str]:
    """Return the telling words of a title and description (lower case, no stop words)."""
    words = set()
    for text in texts:
        words.update(w for w in _WORD.findall((text or "").lower()) if w not in _STOP)
    return frozenset(sorted(words)[:40])


def template_key(text: str) -> str:
    """Return a log pattern with its numbers, ids and quoted values masked, for matching across incidents."""
    return " ".join(_MASK.sub("#", text.lower()).split())[:200]


def basic(*, title: str, description: str = "", services: Iterable[str] = (), alerts: Iterable[str] = ()) -> Fingerprint:
    """Return the fingerprint of what is known without the evidence analysis (an open incident, no draft yet)."""
    return Fingerprint(services=frozenset(s for s in services if s), alerts=frozenset(a for a in alerts if a),
                       terms=terms(title, description))


def from_pack(pack: EvidencePack) -> Fingerprint:
    """Return an incident's fingerprint from its evidence pack, with the analysis's category and suspect files."""
    ranked = suspects.rank_suspects(pack)
    top = suspects.standout(ranked)
    dominant = causes.dominant(pack)
    category = dominant.key if dominant else ("deploy" if top else None)
    files: list[str] = []
    if top:
        wanted = top.matched_commit_ids or top.commit_ids
        for commit_id in wanted[:3]:
            commit = suspects.find_commit(pack, commit_id)
            if commit:
                files += [f for f in commit.files if not _boring(f)]
    templates = {}
    for log in sorted(pack.logs, key=lambda g: -g.incident_count)[:MAX_ITEMS]:
        templates.setdefault(template_key(log.template), log.template[:160])
    return Fingerprint(
        services=frozenset(s for s in pack.incident.services if s), category=category,
        files=frozenset(files[:MAX_ITEMS]), templates=frozenset(templates), labels=templates,
        alerts=frozenset(a.name for a in pack.alerts if a.name),
        terms=terms(pack.incident.title, pack.incident.description))


def _boring(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return name in {"changelog.md", "readme.md", "package-lock.json", "go.sum", "yarn.lock"} or "test" in name


def category_label(key: str) -> str:
    return "a deploy" if key == "deploy" else causes.label(key)


def compare(a: Fingerprint, b: Fingerprint) -> tuple[float, tuple[str, ...]]:
    """Return how alike two incidents are (0..1) and the reasons, strongest first."""
    score, reasons = 0.0, []
    shared = sorted(a.services & b.services)
    if shared:
        score += WEIGHTS["services"] * len(shared) / len(a.services | b.services)
        reasons.append(f"same service: {', '.join(shared[:3])}")
    if a.category and a.category == b.category:
        score += WEIGHTS["category"]
        reasons.append(f"same cause: {category_label(a.category)}")
    files = sorted(a.files & b.files)
    if files:
        score += WEIGHTS["files"] * min(1.0, len(files) / min(len(a.files), len(b.files)))
        reasons.append(f"same suspect file: {files[0]}" + (f" (+{len(files) - 1})" if len(files) > 1 else ""))
    patterns = sorted(a.templates & b.templates)
    if patterns:
        score += WEIGHTS["templates"] * min(1.0, len(patterns) / min(len(a.templates), len(b.templates)))
        sample = a.labels.get(patterns[0]) or b.labels.get(patterns[0]) or patterns[0]
        reasons.append(f"same log pattern: “{sample[:80]}”")
    alerts = sorted(a.alerts & b.alerts)
    if alerts:
        score += WEIGHTS["alerts"]
        reasons.append(f"same alert: {', '.join(alerts[:2])}")
    if a.terms and b.terms:
        overlap = len(a.terms & b.terms) / len(a.terms | b.terms)
        score += WEIGHTS["terms"] * overlap
        if overlap >= 0.3:
            reasons.append("similar title")
    return round(score, 4), tuple(reasons)
