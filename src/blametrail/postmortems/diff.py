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
WORD_DIFF_LIMIT = 600_000  # tokens before × tokens after compared word by word in one go (≈0.1 s at worst here)


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
    # why: difflib is quadratic on repeated words (4,000 common words took 96 s); the shared ends cost nothing
    # to skip, and a long middle is compared sentence by sentence first
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    out: list[tuple[str, str]] = [("=", "".join(a[:head]))] if head else []
    out += _middle(a[head:len(a) - tail], b[head:len(b) - tail])
    if tail:
        out.append(("=", "".join(a[len(a) - tail:])))
    return _merged(out)


def _middle(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    if not a or not b or len(a) * len(b) <= WORD_DIFF_LIMIT:
        return _word_ops(a, b)
    left, right = _sentences(a), _sentences(b)
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, [_key(x) for x in left], [_key(x) for x in right], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old = [t for chunk in left[i1:i2] for t in chunk]
        new = [t for chunk in right[j1:j2] for t in chunk]
        if tag == "equal":
            out.append(("=", "".join(new)))
        elif old and new and len(old) * len(new) <= WORD_DIFF_LIMIT:
            out += _word_ops(old, new)
        else:  # too long to compare word by word: the passage as a whole went and came
            out += [op for op in (("-", "".join(old)), ("+", "".join(new))) if op[1]]
    return out


def _word_ops(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    # why: whitespace is junk so that two rewritten phrases read as one change, not word/space/word confetti
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(str.isspace, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", "".join(b[j1:j2])))
    return out


def _sentences(tokens: list[str]) -> list[list[str]]:
    """Split tokens into sentences (ending in . ! ? or a line break), whitespace kept with the sentence before."""
    chunks: list[list[str]] = [[]]
    for token in tokens:
        chunks[-1].append(token)
        if "\n" in token or (not token.isspace() and token[-1] in ".!?"):
            chunks.append([])
    return [c for c in chunks if c]


def _key(chunk: list[str]) -> str:
    return " ".join(t for t in chunk if not t.isspace())


def _merged(parts: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for op, text in parts:
        if not text:
            continue
        if out and out[-1][0] == op:
            out[-1] = (op, out[-1][1] + text)
        else:
            out.append((op, text))
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
