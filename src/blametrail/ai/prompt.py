"""The generation context as a prompt: versioned templates, evidence in a fixed priority, bounded, scrubbed, delimited.

Priority (documented, and the order items are cut in reverse): human updates (whole, never truncated), suspect
deploys and their commits (analysis.verdict.ranked_suspects order), alerts and monitor changes, metric findings,
log templates, other status changes. Every evidence text is scrubbed of secrets and sits inside an <evidence>
block whose delimiter cannot be forged from inside (any "<evidence" or "</evidence" in the content is escaped).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

from blametrail.ai import tokens
from blametrail.ai.scrub import scrub
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.verdict import ranked_suspects
from blametrail.clock import iso
from blametrail.engines.sections import SECTION_KEYS, Sections
from blametrail.engines.summary import SummaryOut

VERSION = "v1"
KINDS = ("postmortem", "summary")
CATEGORIES = ("updates", "deploys", "commits", "alerts", "monitor_events", "metrics", "logs", "status_changes")
HEADINGS = {
    "updates": "Human updates posted during the incident (the strongest signal; each one whole, oldest first)",
    "deploys": "Deploys of the affected services and their commits (most suspect first)",
    "alerts": "Alerts and monitor state changes (in time order)",
    "metrics": "Metric change points (largest change first)",
    "logs": "Log templates that are new or spiking in the window (most significant first)",
    "status_changes": "Other incident status changes",
}
SECTION_OF = {"updates": "updates", "deploys": "deploys", "commits": "deploys", "alerts": "alerts",
              "monitor_events": "alerts", "metrics": "metrics", "logs": "logs", "status_changes": "status_changes"}
COMMIT_TEXT = 2_000
COMMIT_FILES = 30
LOG_TEMPLATE_TEXT = 1_000
LOG_SAMPLES = 2
LOG_SAMPLE_TEXT = 500
SHORT_TEXT = 2_000
INSTRUCTION_TEXT = 1_000  # characters kept of one section's instruction (the template allows as many)
RANK_LOGS = 40  # bounded view used to rank suspect deploys: most significant log templates,
RANK_UPDATES = 200  # the first and the latest updates,
RANK_DEPLOYS = 60  # and the latest deploys
LISTED_CUT_IDS = 40  # cut update ids named in the prompt itself; the full list is in Prompt.cut_update_ids
_MIN_ROOM = 12  # below this many free tokens no evidence block can fit
_MISSES_PER_CATEGORY = 200  # stop trying a category after this many items in a row that do not fit

_DELIMITER = re.compile(r"<(?=\s*/?\s*evidence)", re.I)


@dataclass(frozen=True)
class Prompt:
    """A built prompt with what it holds: version, texts, real token count, and what was included or cut."""

    version: str
    system: str
    user: str
    tokens: int
    included: dict[str, int] = field(default_factory=dict)
    cut: dict[str, int] = field(default_factory=dict)
    cut_update_ids: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """Return a JSON-ready copy, stored with the generation run for audit."""
        return {"version": self.version, "system": self.system, "user": self.user, "tokens": self.tokens,
                "tokenizer": tokens.describe(), "included": dict(self.included), "cut": dict(self.cut),
                "cut_update_ids": list(self.cut_update_ids)}


@dataclass
class _Item:
    category: str
    key: str  # evidence id
    text: str
    cost: int = 0


@lru_cache(maxsize=None)
def template(name: str, version: str = VERSION) -> str:
    """Return a prompt template's text from ai/prompts/<version>/."""
    return resources.files("blametrail.ai").joinpath("prompts", version, name).read_text(encoding="utf-8").strip()


def schema_for(kind: str) -> dict:
    """Return the JSON schema the model's output must follow for a kind of generation."""
    if kind == "summary":
        return SummaryOut.model_json_schema()
    return Sections.model_json_schema()


def system_prompt(kind: str = "postmortem") -> str:
    """Return the system prompt for a kind of generation, with its JSON schema."""
    if kind not in KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}")
    schema = json.dumps(schema_for(kind), separators=(",", ":"), sort_keys=True)
    return template(f"system_{kind}.txt").replace("{{schema}}", schema)


def escape_content(text: str | None) -> str:
    """Scrub a text and escape anything that could open or close an evidence block."""
    return _DELIMITER.sub("&lt;", scrub(text or ""))


def _attr(value) -> str:
    text = " ".join(scrub(str(value)).split())[:200]
    return html.escape(text, quote=True)


def block(kind: str, content: str, **attrs) -> str:
    """Return one delimited evidence block (attributes and content scrubbed and escaped)."""
    head = " ".join(f'{k}="{_attr(v)}"' for k, v in attrs.items() if v not in (None, ""))
    return f'<evidence kind="{kind}"{" " + head if head else ""}>\n{escape_content(content)}\n</evidence>'


def _clip(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + f" […{len(text) - limit} more characters]"


# --- evidence items, in priority order ------------------------------------------------------------------

def _updates(pack: EvidencePack) -> list[_Item]:
    ordered = sorted(pack.updates, key=lambda u: (u.at, u.id))
    return [_Item("updates", u.id, block("update", u.body, id=u.id, at=iso(u.at), author=u.author)) for u in ordered]


def _deploys(pack: EvidencePack) -> list[_Item]:
    # why: ranking compares every deploy with every log template; the most significant templates carry the signal,
    # and the full set (thousands from a million lines) would make ranking take minutes
    # and every update; at scale (thousands of each) that takes minutes, so rank on a bounded view: the most
    # significant templates, the first and latest updates, and the latest deploys (the others follow in time order)
    bounded = pack
    if len(pack.logs) > RANK_LOGS or len(pack.updates) > RANK_UPDATES or len(pack.deploys) > RANK_DEPLOYS:
        ordered_updates = sorted(pack.updates, key=lambda u: (u.at, u.id))
        bounded = replace(
            pack, logs=tuple(sorted(pack.logs, key=_log_weight)[:RANK_LOGS]),
            updates=tuple(ordered_updates[:1] + ordered_updates[1:][-(RANK_UPDATES - 1):]),
            deploys=tuple(sorted(pack.deploys, key=lambda d: (d.deployed_at, d.id))[-RANK_DEPLOYS:]))
    try:
        suspects = ranked_suspects(bounded)
    except Exception:  # why: a ranking bug must not cost the model its evidence; fall back to time order
        suspects = ()
    rank = {s.deploy_id: (i, s) for i, s in enumerate(suspects)}
    ordered = sorted(pack.deploys, key=lambda d: (d.id not in rank, rank.get(d.id, (0,))[0], -d.deployed_at.timestamp()))
    items: list[_Item] = []
    for d in ordered:
        position = rank.get(d.id)
        lines = [f"Deploy of {d.service} version {d.version} to {d.environment} at {iso(d.deployed_at)}, "
                 f"{len(d.commits)} commit(s)."]
        if position is not None:
            i, s = position
            lines.append(f"Suspect rank {i + 1} of {len(suspects)} (score {s.score:.2f}): {'; '.join(s.reasons)}.")
        else:
            lines.append("Not ranked as a suspect (after the onset or outside the affected window).")
        items.append(_Item("deploys", d.id, block("deploy", "\n".join(lines), id=d.id, service=d.service,
                                                   at=iso(d.deployed_at))))
        order = {cid: n for n, cid in enumerate(position[1].commit_ids)} if position else {}
        for c in sorted(d.commits, key=lambda c: (order.get(c.id, len(order)), c.id)):
            files = list(c.files[:COMMIT_FILES])
            more = f" (and {len(c.files) - COMMIT_FILES} more)" if len(c.files) > COMMIT_FILES else ""
            text = _clip(c.message, COMMIT_TEXT) + (f"\nFiles: {', '.join(files)}{more}" if files else "")
            items.append(_Item("commits", c.id, block("commit", text, id=c.id, deploy=d.id, sha=c.sha[:12],
                                                      author=c.author, at=iso(c.committed_at))))
    return items


def _alerts_and_monitors(pack: EvidencePack) -> list[_Item]:
    rows = []
    for a in pack.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in a.labels)
        text = _clip(a.summary, SHORT_TEXT) + (f"\nLabels: {_clip(labels, SHORT_TEXT)}" if labels else "")
        rows.append((a.at, a.id, _Item("alerts", a.id, block(
            "alert", text or a.name, id=a.id, at=iso(a.at), name=a.name, status=a.status, service=a.service,
            severity=a.severity))))
    for m in pack.monitor_events:
        parts = [f"Monitor {m.monitor} is {m.state}."]
        if m.url:
            parts.append(f"URL: {m.url}")
        if m.total_checks:
            parts.append(f"Failed checks: {m.failed_checks} of {m.total_checks}.")
        if m.first_failure_at:
            parts.append(f"First failure at {iso(m.first_failure_at)}.")
        if m.recovered_at:
            parts.append(f"Recovered at {iso(m.recovered_at)}.")
        if m.error_kinds:
            parts.append("Errors: " + ", ".join(f"{k} ×{n}" for k, n in m.error_kinds) + ".")
        if m.last_error:
            parts.append(f"Last error: {_clip(m.last_error, SHORT_TEXT)}")
        rows.append((m.at, m.id, _Item("monitor_events", m.id, block(
            "monitor", "\n".join(parts), id=m.id, at=iso(m.at), monitor=m.monitor, state=m.state))))
    return [item for _, _, item in sorted(rows, key=lambda r: (r[0], r[1]))]


def _metrics(pack: EvidencePack) -> list[_Item]:
    items = []
    for m in sorted(pack.metrics, key=lambda m: (-abs(m.magnitude), m.id)):
        unit = f" {m.unit}" if m.unit else ""
        text = (f"{m.series} went {m.direction} at {iso(m.onset)}: {m.before:g}{unit} before, {m.after:g}{unit} after "
                f"({m.magnitude:+.0%}).")
        items.append(_Item("metrics", m.id, block("metric", text, id=m.id, series=m.series, service=m.service,
                                                   onset=iso(m.onset), source=m.source)))
    return items


def _log_weight(g) -> tuple:
    return (not g.new, -(g.spike_ratio or 0.0), -g.incident_count, g.id)


def _logs(pack: EvidencePack) -> list[_Item]:
    items = []
    for g in sorted(pack.logs, key=_log_weight):
        change = "new in the window" if g.new else (
            f"spiking ×{g.spike_ratio:.1f} over baseline" if g.spike_ratio else "changed")
        lines = [f"Template: {_clip(g.template, LOG_TEMPLATE_TEXT)}",
                 f"Seen {g.incident_count} times in the window, {g.baseline_count} in the baseline; {change}."]
        if g.first_seen:
            lines.append(f"First seen at {iso(g.first_seen)}.")
        lines += [f"Sample: {_clip(s, LOG_SAMPLE_TEXT)}" for s in g.samples[:LOG_SAMPLES]]
        items.append(_Item("logs", g.id, block("log", "\n".join(lines), id=g.id, service=g.service, source=g.source)))
    return items


def _statuses(pack: EvidencePack) -> list[_Item]:
    return [_Item("status_changes", s.id, block("status", s.detail or s.status, id=s.id, at=iso(s.at),
                                                status=s.status, actor=s.actor))
            for s in sorted(pack.status_changes, key=lambda s: (s.at, s.id))]


# --- assembly --------------------------------------------------------------------------------------------

def _header(pack: EvidencePack) -> str:
    inc = pack.incident
    facts = [
        f"Incident #{inc.id}. Severity recorded: {inc.severity or 'not set'}.",
        f"Affected services: {', '.join(inc.services) or 'none recorded'}.",
        f"Started at {iso(inc.started_at)}; " + (
            f"resolved at {iso(inc.resolved_at)} by {_attr(inc.resolved_by or 'unknown')}."
            if inc.resolved_at else "still open."),
    ]
    if inc.resolved_at:
        minutes = max(0, int((inc.resolved_at - inc.started_at).total_seconds() / 60 + 0.5))
        facts.append(f"Duration: {minutes} minutes (computed from the data).")
    facts.append(f"Evidence window (UTC): {iso(pack.window_start)} to {iso(pack.window_end)}. "
                 "All times are UTC; every timestamp you write must fall inside this window.")
    title = f"Title: {inc.title}" + (f"\nDescription: {inc.description}" if inc.description else "")
    return ("# Incident (facts computed from the data)\n" + "\n".join(facts) + "\n"
            + block("incident", title, created_by=inc.created_by))


def _regeneration(current_sections: dict | None, edited_keys, budget: int) -> str:
    keys = [k for k in edited_keys if current_sections and k in current_sections]
    if not keys:
        return ""
    edited = {k: current_sections[k] for k in keys}
    text = json.dumps(edited, ensure_ascii=False, indent=1, default=str)
    limit = max(200, budget // 4) * 3  # why: people's sections are kept, but never allowed to crowd out the evidence
    if len(text) > limit:
        text = text[:limit] + " …(truncated)"
    return "# " + template("regenerate.txt") + "\n" + block("human_sections", text, sections=", ".join(keys))


def _instructions(instructions: Mapping[str, str] | None) -> str:
    """Return the organization's per-section instructions (from its template) as a block of the user prompt."""
    rows = [(k, " ".join(scrub(str(v)).split())[:INSTRUCTION_TEXT]) for k, v in (instructions or {}).items()
            if k in SECTION_KEYS and str(v or "").strip()]
    if not rows:
        return ""
    # why: these are instructions (the organization wrote them), so they sit outside the evidence blocks; the rules
    # of the system message (citations, blamelessness, the schema) still win
    lines = "\n".join(f"- {key}: {escape_content(text)}" for key, text in sorted(rows, key=lambda r: SECTION_KEYS.index(r[0])))
    return "# " + template("instructions.txt") + "\n" + lines


def _extra_guide(extra_sections) -> str:
    """Return the template's extra sections as a block of the user prompt (empty when it has none)."""
    rows = [(str(k), " ".join(scrub(str(t)).split())[:200], " ".join(scrub(str(i or "")).split())[:INSTRUCTION_TEXT])
            for k, t, i in (extra_sections or ())]
    if not rows:
        return ""
    lines = "\n".join(f"- {key} ({escape_content(title)}){': ' + escape_content(text) if text else ''}"
                      for key, title, text in rows)
    return ("# Extra sections of this organization's postmortems\nWrite each one in `extra` under its key, as Markdown "
            "citing evidence ids like the other sections; leave a key out when the evidence says nothing about it. "
            "Use no other keys in `extra`.\n" + lines)


def _severity_guide(definitions) -> str:
    """Return the organization's own severity scale as a block of the user prompt (empty: the built-in scale)."""
    rows = [(str(d.severity), " ".join(scrub(str(d.meaning or "")).split())[:INSTRUCTION_TEXT])
            for d in (definitions or ())]
    if not rows:
        return ""
    lines = "\n".join(f"- {sev}: {escape_content(meaning)}" for sev, meaning in rows)
    return ("# This organization's severity levels\nThe severity is rated from the evidence by these definitions; "
            "describe the impact in the same terms.\n" + lines)


def _cut_notice(cut: dict[str, int], cut_update_ids: list[str], pack: EvidencePack) -> str:
    if not any(cut.values()):
        return ""
    lines = ["# Evidence cut to fit the context budget"]
    if cut_update_ids:
        by_id = {u.id: u for u in pack.updates}
        times = sorted(by_id[i].at for i in cut_update_ids if i in by_id)
        named = ", ".join(cut_update_ids[:LISTED_CUT_IDS])
        more = f" and {len(cut_update_ids) - LISTED_CUT_IDS} more" if len(cut_update_ids) > LISTED_CUT_IDS else ""
        span = f", posted between {iso(times[0])} and {iso(times[-1])}" if times else ""
        lines.append(f"{len(cut_update_ids)} human update(s) were cut and are NOT shown{span}: {named}{more}. "
                     "Do not guess what they said.")
    others = [f"{n} {k.replace('_', ' ')}" for k, n in cut.items() if n and k != "updates"]
    if others:
        lines.append("Also not shown (lowest priority first cut): " + ", ".join(others) + ".")
    return "\n".join(lines)


def _assemble(head: str, regen: str, notice: str, chosen: dict[str, list[_Item]], totals: dict[str, int],
              task: str, guide: str = "") -> str:
    parts = [head]
    if guide:
        parts.append(guide)
    if notice:
        parts.append(notice)
    if regen:
        parts.append(regen)
    for section, heading in HEADINGS.items():
        members = [c for c, s in SECTION_OF.items() if s == section]
        shown = sum(len(chosen[c]) for c in members)
        total = sum(totals[c] for c in members)
        if total == 0:
            parts.append(f"# {heading}\n(none in the window)")
            continue
        items = [i for i in _flat(chosen) if SECTION_OF[i.category] == section]
        suffix = f" — {shown} of {total} shown" if shown < total else ""
        parts.append(f"# {heading}{suffix}\n" + "\n".join(i.text for i in items))
    parts.append(task)
    return "\n\n".join(parts)


def _flat(chosen: dict[str, list[_Item]]) -> list[_Item]:
    items = [i for c in CATEGORIES for i in chosen[c]]
    order = chosen["__order__"]  # type: ignore[index]
    return sorted(items, key=lambda i: order[id(i)])


def build_prompt(
    pack: EvidencePack, *, budget_tokens: int, current_sections: dict | None = None, edited_keys=(),
    kind: str = "postmortem", model: str | None = None, instructions: Mapping[str, str] | None = None,
    extra_sections=(), severity_definitions=(),
) -> Prompt:
    """Build the system and user prompts from the pack, cut to `budget_tokens` in the documented priority.

    `instructions` (section → text, from the organization's template) is the one hook through which a template
    shapes the model's draft; it applies to postmortems only.
    """
    system = system_prompt(kind)
    task = template(f"task_{kind}.txt")
    head = _header(pack)
    guide = "\n\n".join(filter(None, (_instructions(instructions), _extra_guide(extra_sections),
                                      _severity_guide(severity_definitions)))) if kind == "postmortem" else ""
    regen = _regeneration(current_sections, tuple(edited_keys or ()), budget_tokens)

    def cost(text: str) -> int:
        return tokens.count(text, model)

    deploy_items, alert_items = _deploys(pack), _alerts_and_monitors(pack)
    groups = {"updates": _updates(pack), "metrics": _metrics(pack), "logs": _logs(pack),
              "status_changes": _statuses(pack)}
    for category in ("deploys", "commits", "alerts", "monitor_events"):
        groups[category] = [i for i in (*deploy_items, *alert_items) if i.category == category]
    totals = {c: len(groups[c]) for c in CATEGORIES}
    # deploy_items already interleave each deploy with its commits; alert_items are alerts and monitors by time
    sequence = [*groups["updates"], *deploy_items, *alert_items, *groups["metrics"], *groups["logs"],
                *groups["status_changes"]]
    order = {id(item): n for n, item in enumerate(sequence)}

    empty_scaffold = _assemble(head, regen, "", _empty(order), totals, task, guide)
    # why: "N of M shown" suffixes and joins need a little room; a cut notice that overshoots is paid for below
    room = budget_tokens - cost(system) - cost(empty_scaffold) - 64

    chosen = _empty(order)
    updates = groups["updates"]
    # Updates are kept whole. If not all fit: keep the first (it usually declares the incident), then the most
    # recent ones going back in time, so the model sees how the incident began and where it stands.
    preference = updates[:1] + list(reversed(updates[1:]))
    kept: set[int] = set()
    for item in preference:
        if room < _MIN_ROOM:
            break
        item.cost = cost(item.text) + 1
        if item.cost <= room:
            kept.add(id(item))
            room -= item.cost
    chosen["updates"] = [u for u in updates if id(u) in kept]

    misses = dict.fromkeys(CATEGORIES, 0)
    for item in sequence[len(updates):]:
        if room < _MIN_ROOM:
            break
        if misses[item.category] >= _MISSES_PER_CATEGORY:
            continue
        if item.category == "commits" and not any(d.key == _deploy_of(item) for d in chosen["deploys"]):
            misses[item.category] += 1  # why: a commit without its deploy block has no context
            continue
        item.cost = cost(item.text) + 1
        if item.cost <= room:
            chosen[item.category].append(item)
            room -= item.cost
            misses[item.category] = 0
        else:
            misses[item.category] += 1

    # Assemble with real counts; if the joins or the notice overshoot, drop lowest-priority items and recount.
    while True:
        cut = {c: totals[c] - len(chosen[c]) for c in CATEGORIES}
        shown = {id(x) for x in chosen["updates"]}
        cut_ids = [u.key for u in updates if id(u) not in shown]
        user = _assemble(head, regen, _cut_notice(cut, cut_ids, pack), chosen, totals, task, guide)
        total = cost(system) + cost(user)
        if total <= budget_tokens or not any(chosen[c] for c in CATEGORIES):
            break
        _drop(chosen, total - budget_tokens, cost)
    if total > budget_tokens:
        raise ValueError(f"a budget of {budget_tokens} tokens cannot hold the instructions ({total} tokens)")
    included = {c: len(chosen[c]) for c in CATEGORIES}
    return Prompt(version=VERSION, system=system, user=user, tokens=total, included=included,
                  cut={c: totals[c] - included[c] for c in CATEGORIES}, cut_update_ids=tuple(cut_ids))


def _empty(order: dict) -> dict:
    chosen: dict = {c: [] for c in CATEGORIES}
    chosen["__order__"] = order
    return chosen


def _deploy_of(commit: _Item) -> str | None:
    match = re.search(r'\bdeploy="([^"]*)"', commit.text)
    return match.group(1) if match else None


def _drop(chosen: dict, overshoot: int, cost) -> None:
    """Remove lowest-priority items worth at least `overshoot` tokens; updates last, and never the first one."""
    need = overshoot
    for category in reversed(CATEGORIES):
        items = chosen[category]
        while items and need > 0:
            if category == "updates" and len(items) == 1:
                victim = items.pop(0)  # the last resort: even the first update does not fit
            elif category == "updates":
                victim = items.pop(1)  # the oldest after the first: the most recent ones stay
            else:
                victim = items.pop()
            need -= victim.cost or cost(victim.text) + 1
        if need <= 0:
            return
