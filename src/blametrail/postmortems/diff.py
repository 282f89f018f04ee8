"""Comparing two texts of a postmortem, section by section: prose word by word, tables and lists row by row.

Pure: takes two `sections` dicts and the organization's layout ([{key, title, extra}]) and returns plain data the
compare page renders — nothing here escapes or formats HTML.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

_TOKENS = re.compile(r"\s+|[^\s]+")
ROW_SECTIONS = ("timeline", "action_items", "contributing_factors", "what_went_well", "what_went_poorly",
                "customer_impact")


@dataclass(frozen=True)
class Row:
    """One row of a table or list: "=" the same, "-" only before, "+" only after, "~" changed (with word parts)."""

    op: str
    text: str = ""
    parts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SectionDiff:
    key: str
    title: str
    changed: bool
    kind: str  # "text" (word parts) | "rows"
    parts: tuple[tuple[str, str], ...] = ()
    rows: tuple[Row, ...] = ()
    added: int = 0
    removed: int = 0
    stats: dict = field(default_factory=dict)


def words(before: str, after: str) -> tuple[tuple[str, str], ...]:
    """Return the word-level difference: parts ("=", text), ("-", removed text), ("+", added text), in order."""
    a, b = _TOKENS.findall(before or ""), _TOKENS.findall(after or "")
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", "".join(b[j1:j2])))
    return tuple(out)


def _rows(key: str, value: object) -> list[str]:
    if key == "timeline":
        return [" · ".join([str(t.get("at") or ""), str(t.get("source") or ""), str(t.get("description") or ""),
                            ", ".join(str(e) for e in t.get("evidence") or []) or "—"])
                for t in value or [] if isinstance(t, dict)]
    if key == "action_items":
        return [" · ".join([str(a.get("title") or ""), str(a.get("priority") or ""),
                            str(a.get("suggested_owner") or "Unassigned")]) for a in value or [] if isinstance(a, dict)]
    if key == "customer_impact":
        v = value if isinstance(value, dict) else {}
        minutes = v.get("duration_minutes")
        return [str(v.get("description") or ""),
                f"Duration: {minutes} minutes" if minutes is not None else "Duration: unknown",
                "Affected services: " + (", ".join(v.get("affected_services") or []) or "none recorded")]
    return [str(x) for x in value or []]


def _text(key: str, value: object) -> str:
    if key == "confidence":
        v = value if isinstance(value, dict) else {}
        return f"{(v.get('level') or 'low').capitalize()} — {v.get('reason') or ''}".strip()
    return "" if value is None else str(value)


def rows(before: list[str], after: list[str]) -> tuple[Row, ...]:
    """Compare two lists of rows: unchanged, removed, added, or changed in place (then word by word)."""
    out: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [Row("=", text) for text in before[i1:i2]]
        elif tag == "replace":
            pairs = min(i2 - i1, j2 - j1)
            out += [Row("~", parts=words(before[i1 + n], after[j1 + n])) for n in range(pairs)]
            out += [Row("-", text) for text in before[i1 + pairs:i2]]
            out += [Row("+", text) for text in after[j1 + pairs:j2]]
        else:
            out += [Row("-", text) for text in before[i1:i2]]
            out += [Row("+", text) for text in after[j1:j2]]
    return tuple(out)


def _value(sections: dict | None, key: str) -> object:
    sections = sections or {}
    if key.startswith("extra:"):
        return (sections.get("extra") or {}).get(key.split(":", 1)[1])
    return sections.get(key)


def compare(before: dict | None, after: dict | None, layout: list[dict]) -> list[SectionDiff]:
    """Compare two postmortem texts in the layout's order (extra sections keyed `extra:<key>`)."""
    out = []
    for item in layout:
        key = f"extra:{item['key']}" if item.get("extra") else item["key"]
        a, b = _value(before, key), _value(after, key)
        base = key.split(":", 1)[0] if not item.get("extra") else "extra"
        if base in ROW_SECTIONS:
            diff = rows(_rows(base, a), _rows(base, b))
            added = sum(1 for r in diff if r.op in ("+", "~"))
            removed = sum(1 for r in diff if r.op in ("-", "~"))
            out.append(SectionDiff(key, item["title"], any(r.op != "=" for r in diff), "rows", rows=diff,
                                   added=added, removed=removed))
        else:
            parts = words(_text(base, a), _text(base, b))
            added = sum(len(t.split()) for op, t in parts if op == "+")
            removed = sum(len(t.split()) for op, t in parts if op == "-")
            out.append(SectionDiff(key, item["title"], any(op != "=" for op, _ in parts), "text", parts=parts,
                                   added=added, removed=removed))
    return out
