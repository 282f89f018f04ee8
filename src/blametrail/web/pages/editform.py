"""The postmortem editor's form: sections to form values, form values back to sections, and readable text."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime

import nh3
from markdown_it import MarkdownIt
from pydantic import ValidationError
from starlette.datastructures import FormData

from blametrail.analysis.timeline import AFTER_RESOLUTION
from blametrail.clock import parse_iso
from blametrail.engines.sections import SECTION_KEYS, Sections, dump
from blametrail.web.pages.common import format_utc

BLANK_ACTION_ROWS = 3
BLANK_TIMELINE_ROWS = 2
LABELS = {
    "summary": "Summary", "severity": "Severity", "customer_impact": "Customer impact", "timeline": "Timeline",
    "root_cause": "Root cause", "contributing_factors": "Contributing factors", "what_went_well": "What went well",
    "what_went_poorly": "What went poorly", "action_items": "Action items", "confidence": "Confidence",
}
# the form fields that edit each section (an editor for one section shows and submits only these)
SECTION_FIELDS = {
    "summary": ("summary",), "severity": ("severity",),
    "customer_impact": ("impact_description", "impact_duration", "impact_services"),
    "timeline": ("timeline",), "root_cause": ("root_cause",),
    "contributing_factors": ("contributing_factors",), "what_went_well": ("what_went_well",),
    "what_went_poorly": ("what_went_poorly",), "action_items": ("action_items",),
    "confidence": ("confidence_level", "confidence_reason"),
}
# free-text fields written in Markdown (they get a Preview); template extra sections are prose too
PROSE_FIELDS = ("summary", "root_cause", "impact_description")
EXTRA_PREFIX = "extra__"
TABLES = {"timeline": ("at", "source", "description", "evidence", "origin"),
          "action_items": ("title", "priority", "owner", "origin")}
_FIELD_WORDS = {"description": "description", "duration_minutes": "duration (minutes)",
                "affected_services": "affected services", "title": "title", "priority": "priority",
                "suggested_owner": "suggested owner", "at": "time", "source": "source", "evidence": "evidence ids",
                "level": "level", "reason": "reason"}


def _text(value: object) -> str:
    # why: browsers send textarea newlines as CRLF; stored text uses LF, so unchanged text must compare equal
    return str(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _blank_action() -> dict:
    return {"title": "", "priority": "medium", "owner": "", "origin": ""}


def _blank_timeline() -> dict:
    return {"at": "", "source": "update", "description": "", "evidence": "", "origin": ""}


_BLANK = {"timeline": _blank_timeline, "action_items": _blank_action}
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def render_markdown(text: str) -> str:
    """Return the Markdown text as sanitized HTML (raw HTML is not rendered; links get rel=noopener noreferrer)."""
    return nh3.clean(_MARKDOWN.render(_text(text)), link_rel="noopener noreferrer nofollow")


def section_of_field(field: str) -> str | None:
    """Return the section key a form field belongs to (an extra section: `extra`), or None."""
    if field.startswith(EXTRA_PREFIX):
        return "extra"
    return next((key for key, fields in SECTION_FIELDS.items() if field in fields), None)


def apply_op(values: dict, op: str) -> dict:
    """Apply a table operation named by a submit button: `<table>:add`, `<table>:remove:<n>`, `<table>:up:<n>`,
    `<table>:down:<n>` (n counts rows from 0). Unknown operations change nothing."""
    table, _, rest = op.partition(":")
    if table not in TABLES:
        return values
    rows = [dict(r) for r in values.get(table, [])]
    verb, _, index = rest.partition(":")
    n = int(index) if index.isdigit() else -1
    if verb == "add":
        rows.append(_BLANK[table]())
    elif verb == "remove" and 0 <= n < len(rows):
        rows.pop(n)
    elif verb == "up" and 1 <= n < len(rows):
        rows[n - 1], rows[n] = rows[n], rows[n - 1]
    elif verb == "down" and 0 <= n < len(rows) - 1:
        rows[n + 1], rows[n] = rows[n], rows[n + 1]
    return {**values, table: rows}


def values_from_sections(sections: dict) -> dict:
    """Return the editor's field values for stored sections (with blank rows to add more)."""
    s = dump(Sections.model_validate(sections or {}))
    impact = s["customer_impact"]
    return {
        "summary": s["summary"], "severity": s["severity"],
        "impact_description": impact["description"],
        "impact_duration": "" if impact["duration_minutes"] is None else str(impact["duration_minutes"]),
        "impact_services": ", ".join(impact["affected_services"]),
        "root_cause": s["root_cause"],
        "contributing_factors": "\n".join(s["contributing_factors"]),
        "what_went_well": "\n".join(s["what_went_well"]),
        "what_went_poorly": "\n".join(s["what_went_poorly"]),
        "action_items": [{"title": a["title"], "priority": a["priority"], "owner": a["suggested_owner"] or "",
                          "origin": str(n)} for n, a in enumerate(s["action_items"])]
                        + [_blank_action() for _ in range(BLANK_ACTION_ROWS)],
        "timeline": [{"at": t["at"], "source": t["source"], "description": t["description"],
                      "evidence": ", ".join(t["evidence"]), "origin": str(n)} for n, t in enumerate(s["timeline"])]
                    + [_blank_timeline() for _ in range(BLANK_TIMELINE_ROWS)],
        "confidence_level": s["confidence"]["level"], "confidence_reason": s["confidence"]["reason"],
        **({"extra": {str(k): str(v or "") for k, v in s["extra"].items()}} if isinstance(s.get("extra"), dict) else {}),
    }


def values_from_form(form: FormData) -> dict:
    """Return the submitted field values (kept as typed, to re-render the form on errors)."""
    def get(name: str) -> str:
        value = form.get(name)
        return _text(value) if isinstance(value, str) else ""

    def rows(*names: str) -> list[dict]:
        columns = [[_text(v) for v in form.getlist(n) if isinstance(v, str)] for n in names]
        count = max((len(c) for c in columns), default=0)
        return [{n.split("_", 1)[1]: (c[i] if i < len(c) else "") for n, c in zip(names, columns)} for i in range(count)]

    actions = rows("action_title", "action_priority", "action_owner", *(
        ["action_origin"] if "action_origin" in form else []))
    timeline = rows("timeline_at", "timeline_source", "timeline_description", "timeline_evidence", *(
        ["timeline_origin"] if "timeline_origin" in form else []))
    extra = {name.removeprefix(EXTRA_PREFIX): get(name) for name in form if name.startswith(EXTRA_PREFIX)}
    return {**({"extra": extra} if extra else {}),
        "summary": get("summary"), "severity": get("severity"), "impact_description": get("impact_description"),
        "impact_duration": get("impact_duration"), "impact_services": get("impact_services"),
        "root_cause": get("root_cause"), "contributing_factors": get("contributing_factors"),
        "what_went_well": get("what_went_well"), "what_went_poorly": get("what_went_poorly"),
        "action_items": actions, "timeline": timeline,
        "confidence_level": get("confidence_level"), "confidence_reason": get("confidence_reason"),
    }


def _parse_time(text: str) -> datetime:
    cleaned = text.strip().removesuffix("UTC").strip()
    value = parse_iso(cleaned)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # the form says times are UTC


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _commas(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _error_label(loc: tuple) -> str:
    parts = list(loc)
    key = parts.pop(0) if parts else ""
    label = LABELS.get(str(key), str(key))
    if parts and isinstance(parts[0], int):
        label += f" row {parts.pop(0) + 1}"
    if parts:
        label += " " + _FIELD_WORDS.get(str(parts[0]), str(parts[0]))
    return label


def _rendered_rows(current: dict | None) -> tuple[list[tuple[dict, dict]], list[tuple[dict, dict]]]:
    """Return, for the timeline and the action items, (row as the editor showed it, stored entry) pairs in the
    order the editor renders them (stored entries first, then the blank rows, which have no pair)."""
    try:
        stored = dump(Sections.model_validate(current or {}))
    except ValidationError:
        return [], []  # why: the editor cannot have rendered these sections, so no row came from them
    shown = values_from_sections(stored)
    return (list(zip(shown["timeline"], stored["timeline"], strict=False)),
            list(zip(shown["action_items"], stored["action_items"], strict=False)))


def _pair(pairs: list[tuple[dict, dict]], n: int, row: dict | None = None) -> tuple[dict, dict] | None:
    """Return the (shown, stored) pair the row was rendered from: its `origin` when the form sent one (rows can be
    added, removed and moved), else the row at the same position."""
    if row is not None and "origin" in row:
        origin = row["origin"]
        n = int(origin) if origin.isdigit() else len(pairs)
    return pairs[n] if n < len(pairs) else None


def _timeline_kept(row: dict, pair: tuple[dict, dict] | None) -> dict:
    """Return the fields the form does not show that a submitted timeline row keeps from its stored entry.

    `after_resolution` stays on a row the person did not change. On an edited row it stays while the description
    still starts with the "After resolution" mark: the mark is how the form shows the flag, so removing it is how a
    person says the event belongs to the incident after all.
    """
    if pair is None or not pair[1].get("after_resolution"):
        return {}
    shown, _ = pair
    unchanged = (row.get("at", "") == _text(shown["at"]) and row.get("source", "") == _text(shown["source"])
                 and row.get("description", "") == _text(shown["description"])
                 and _commas(row.get("evidence", "")) == _commas(shown["evidence"]))
    marked = row.get("description", "").casefold().startswith(AFTER_RESOLUTION.strip().casefold())
    return {"after_resolution": True} if unchanged or marked else {}


def _action_kept(row: dict, pair: tuple[dict, dict] | None) -> dict:
    """Return the fields the form does not show that a submitted action item keeps from its stored item.

    A row edited in place is the same item (the form adds items in blank rows), so its `kind` stays: rewording a
    detect step does not make it a prevent step. Its `evidence` stays while the title is unchanged (a new priority
    or owner does not change what motivated it); a reworded title drops it, because those ids were cited for the
    old wording and the form neither shows them nor lets the person check them against the new one.
    """
    if pair is None:
        return {}
    shown, stored = pair
    kept: dict = {}
    if stored.get("kind"):
        kept["kind"] = stored["kind"]
    if stored.get("evidence") and row.get("title", "") == _text(shown["title"]):
        kept["evidence"] = list(stored["evidence"])
    return kept


def parse(values: dict, current: dict | None = None) -> tuple[dict | None, list[str]]:
    """Turn form values into complete, validated sections (JSON shape); return (sections, errors).

    `current` is the stored sections the form was rendered from (the save is refused when they changed since,
    by the version check). Row n of the timeline and of the action items was rendered from stored entry n, so an
    edit keeps the entry's fields the form does not show (`after_resolution`, an action item's `kind` and
    `evidence`; see `_timeline_kept` and `_action_kept`) instead of dropping them on an unrelated save.
    """
    timeline_pairs, action_pairs = _rendered_rows(current)
    errors: list[str] = []
    duration: int | None = None
    if values["impact_duration"]:
        try:
            duration = int(values["impact_duration"])
        except ValueError:
            errors.append("Customer impact duration must be a whole number of minutes.")
    timeline = []
    for n, row in enumerate(values["timeline"]):
        if not row.get("description"):
            continue  # why: clearing a row's description is how a row is removed
        try:
            at = _parse_time(row.get("at", ""))
        except ValueError:
            errors.append(f"Timeline row {n + 1} time: use a UTC time like 2026-11-26T10:05:00Z.")
            continue
        timeline.append({"at": at, "source": row.get("source") or "update", "description": row["description"],
                         "evidence": _commas(row.get("evidence", "")), **_timeline_kept(row, _pair(timeline_pairs, n, row))})
    actions = [{"title": row["title"], "priority": row.get("priority") or "medium",
                "suggested_owner": row.get("owner") or None, **_action_kept(row, _pair(action_pairs, n, row))}
               for n, row in enumerate(values["action_items"]) if row.get("title")]
    candidate = {
        "summary": values["summary"], "severity": values["severity"] or "SEV-3",
        "customer_impact": {"description": values["impact_description"], "duration_minutes": duration,
                            "affected_services": _commas(values["impact_services"])},
        "timeline": timeline, "root_cause": values["root_cause"],
        "contributing_factors": _lines(values["contributing_factors"]),
        "what_went_well": _lines(values["what_went_well"]), "what_went_poorly": _lines(values["what_went_poorly"]),
        "action_items": actions,
        "confidence": {"level": values["confidence_level"] or "low", "reason": values["confidence_reason"]},
        **({"extra": dict(values["extra"])} if "extra" in values else {}),
    }
    if errors:
        return None, errors
    try:
        return dump(Sections.model_validate(candidate)), []
    except ValidationError as exc:
        return None, [f"{_error_label(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]


def changed_sections(candidate: dict, current: dict) -> dict:
    """Return only the sections whose content differs from the current ones."""
    try:
        current = dump(Sections.model_validate(current or {}))
    except ValidationError:
        pass  # why: compare with what is stored; every differing section is then sent whole
    keys = (*SECTION_KEYS, *(["extra"] if "extra" in candidate else []))
    return {k: candidate[k] for k in keys if candidate.get(k) != (current or {}).get(k)}


def section_text(key: str, value: object) -> str:
    """Render one section as plain lines of text (for diffs and conflict review)."""
    if value is None:
        return ""
    if key in ("summary", "root_cause", "severity"):
        return str(value)
    if key == "customer_impact":
        v = value or {}
        minutes = v.get("duration_minutes")
        return "\n".join([
            str(v.get("description") or ""),
            f"Duration: {'unknown' if minutes is None else f'{minutes} minutes'}",
            f"Affected services: {', '.join(v.get('affected_services') or []) or 'none'}",
        ])
    if key == "timeline":
        return "\n".join(
            f"{format_utc(t.get('at'))} · {t.get('source')} · {t.get('description')}"
            + (f" [{', '.join(t.get('evidence') or [])}]" if t.get("evidence") else "")
            for t in value or [])
    if key in ("contributing_factors", "what_went_well", "what_went_poorly"):
        return "\n".join(str(item) for item in value or [])
    if key == "action_items":
        return "\n".join(
            f"{a.get('title')} (priority {a.get('priority')}, owner: {a.get('suggested_owner') or 'unassigned'})"
            for a in value or [])
    if key == "confidence":
        v = value or {}
        return f"Level: {v.get('level')}\n{v.get('reason') or ''}".strip()
    return str(value)


def line_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Return a line diff as (op, line) pairs: op is ' ' (same), '-' (only in before) or '+' (only in after)."""
    a, b = before.splitlines(), after.splitlines()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [(" ", line) for line in a[i1:i2]]
        else:
            out += [("-", line) for line in a[i1:i2]]
            out += [("+", line) for line in b[j1:j2]]
    return out


def compare(original: dict, current: dict) -> list[dict]:
    """Return, per section, the original and current text and their line diff."""
    result = []
    for key in SECTION_KEYS:
        before = section_text(key, (original or {}).get(key))
        after = section_text(key, (current or {}).get(key))
        result.append({"key": key, "label": LABELS[key], "changed": before != after, "original": before,
                       "diff": line_diff(before, after)})
    return result

