"""Markdown export of a postmortem: every section in one document, with user text made inert, saying which
published version (if any) the text carries."""

from __future__ import annotations

import re

from blametrail.clock import stamp, to_utc
from blametrail.engines.sections import SECTION_TITLES

_INLINE = re.compile(r"([\\`*_\[\]|])")  # | too: a stray pipe row could turn a paragraph into a table
_ORDERED = re.compile(r"^(\d+)([.)])")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
_NONE = "_None recorded._"


def escape_text(value: object) -> str:
    """Escape one line of user text so it renders literally: no HTML, links, images or emphasis."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _INLINE.sub(r"\\\1", text)
    # A leading marker would start a heading, list, rule or fence; escaping it keeps the line a paragraph.
    if text[:1] in ("#", "+", "-", "=", "~"):
        return "\\" + text
    return _ORDERED.sub(r"\1\\\2", text)


def _inline(value: object) -> str:
    return escape_text(" ".join(str(value if value is not None else "").split()))


def _cell(value: object) -> str:
    # _inline already escaped pipes and joined lines, so the cell cannot split or end its row.
    return _inline(value) or "—"


def _paragraphs(value: object) -> str:
    blocks = re.split(r"\n\s*\n", str(value or "").strip())
    lines = ["\n".join(escape_text(line.strip()) for line in block.splitlines() if line.strip()) for block in blocks]
    return "\n\n".join(line for line in lines if line) or _NONE


def _when(value: object) -> str:
    moment = to_utc(value)
    if moment is None:
        return _inline(value)
    return stamp(moment, seconds=bool(moment.second))


def _bullets(items: list | None) -> str:
    lines = [f"- {_inline(item)}" for item in (items or []) if str(item).strip()]
    return "\n".join(lines) or _NONE


def _evidence(ids: list | None) -> str:
    cited = [str(i) for i in (ids or [])]
    return ", ".join(f"`{i}`" if _PLAIN_ID.match(i) else _cell(i) for i in cited) or "—"


def _table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _impact(impact: dict) -> str:
    minutes = impact.get("duration_minutes")
    duration = "Unknown (no resolution time)" if minutes is None else f"{_inline(minutes)} minutes"
    services = ", ".join(_inline(s) for s in impact.get("affected_services") or []) or "None recorded"
    return (f"{_paragraphs(impact.get('description'))}\n\n"
            f"- **Duration:** {duration}\n- **Affected services:** {services}")


def _timeline(entries: list) -> str:
    rows = [
        [_cell(_when(e.get("at"))), _cell(e.get("source")), _cell(e.get("description")), _evidence(e.get("evidence"))]
        for e in entries
    ]
    return _table(("Time", "Source", "Description", "Evidence"), rows) if rows else "_No timeline entries._"


def _actions(items: list) -> str:
    rows = [
        [_cell(str(i.get("title") or "") + (f" (already tracked as action item #{i['tracked_as']})"
                                            if i.get("tracked_as") else "")),
         _cell(str(i.get("priority") or "medium").capitalize()),
         _cell(i.get("suggested_owner") or "Unassigned")]
        for i in items
    ]
    return _table(("Action", "Priority", "Suggested owner"), rows) if rows else "_No action items._"


def _confidence(confidence: dict) -> str:
    level = _inline(str(confidence.get("level") or "low").capitalize())
    reason = _inline(confidence.get("reason") or "")
    return f"**{level}**" + (f" — {reason}" if reason else "")


def version_note(*, published_version: int | None, published_at: object, published_by: str | None,
                 edited_at: object = None, edited_by: str | None = None) -> str | None:
    """Say, in plain text, which version a postmortem's text carries (None before the first publish).

    "Published version N (date, by who)" when the text is that version; "Edited after publishing version N — not yet
    republished (…)" when people changed it since. The export and the print page both show this sentence.
    """
    if published_version is None:
        return None
    if edited_at is not None:
        who = f" by {' '.join(str(edited_by).split())}" if edited_by else ""
        return (f"Edited after publishing version {published_version} — not yet republished "
                f"(last edit {_when(edited_at)}{who}).")
    who = f", by {' '.join(str(published_by).split())}" if published_by else ""
    return f"Published version {published_version} ({_when(published_at)}{who})"


def to_markdown(
    *, title: str, incident_id: int, status: str, sections: dict, engine: str | None,
    published_at: str | None, generated_at: str | None, published_version: int | None = None,
    published_by: str | None = None, edited_at: str | None = None, edited_by: str | None = None,
    layout: list[dict] | None = None,
) -> str:
    """Render a postmortem and all its sections as a self-contained Markdown document.

    With `published_version`, the document says which published version it carries; with `edited_at` (edited after
    that publish), it opens with a note that the text is not the published one.
    """
    s = sections or {}
    note = version_note(published_version=published_version, published_at=published_at, published_by=published_by,
                        edited_at=edited_at, edited_by=edited_by)
    meta = [
        f"- **Incident:** #{_inline(incident_id)}",
        f"- **Status:** {_inline(str(status).capitalize())}",
        f"- **Severity:** {_inline(s.get('severity') or 'Not set')}",
    ]
    if engine:
        meta.append(f"- **Drafted by:** {_inline(engine)} engine")
    if generated_at:
        meta.append(f"- **Generated:** {_when(generated_at)}")
    meta.append(f"- **Published:** {_when(published_at)}" if published_at else "- **Published:** Not yet")
    if note:
        meta.append(f"- **Version:** {_inline(note)}")
    render = {
        "summary": lambda: _paragraphs(s.get("summary")),
        "severity": lambda: _inline(s.get("severity") or "Not set"),
        "customer_impact": lambda: _impact(s.get("customer_impact") or {}),
        "timeline": lambda: _timeline(s.get("timeline") or []),
        "root_cause": lambda: _paragraphs(s.get("root_cause")),
        "contributing_factors": lambda: _bullets(s.get("contributing_factors")),
        "what_went_well": lambda: _bullets(s.get("what_went_well")),
        "what_went_poorly": lambda: _bullets(s.get("what_went_poorly")),
        "action_items": lambda: _actions(s.get("action_items") or []),
        "confidence": lambda: _confidence(s.get("confidence") or {}),
    }
    # the organization's order and extra sections (orgs.templates.section_layout), or the built-in order
    layout = layout or [{"key": key, "title": title, "extra": False} for key, title in SECTION_TITLES.items()]
    # why: an extra section's title is the organization's text: escaped like any text it wrote
    body = [(_inline(part["title"]), _paragraphs((s.get("extra") or {}).get(part["key"])) or "Not written yet.")
            if part.get("extra") else (part["title"], render[part["key"]]()) for part in layout]
    parts = [f"# Postmortem: {_inline(title) or 'Untitled incident'}"]
    if note and edited_at is not None:  # why: unapproved text must say so before anyone reads it as the record
        parts.append(f"> **{_inline(note)}** An owner or admin has not yet approved this text; the published version "
                     f"{_inline(published_version)} stays as it was.")
    parts.append("\n".join(meta))
    parts += [f"## {heading}\n\n{content}" for heading, content in body]
    return "\n\n".join(parts) + "\n"
