"""Markdown export: every section present, tables intact, user text unable to inject HTML or links."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from blametrail.engines.sections import Sections, dump
from blametrail.postmortems.export import escape_text, to_markdown

HEADINGS = ("## Summary", "## Severity", "## Customer impact", "## Timeline", "## Root cause",
            "## Contributing factors", "## What went well", "## What went poorly", "## Action items",
            "## Confidence")
EVIL = "<script>alert(1)</script> [click](https://evil.example) ![img](https://evil.example/x.png)"


def _sections(**overrides: object) -> dict:
    data = {
        "summary": "Checkout failed for 23 minutes.",
        "severity": "SEV-2",
        "customer_impact": {"description": "Customers saw 502s.", "duration_minutes": 23,
                            "affected_services": ["checkout", "payments"]},
        "timeline": [
            {"at": "2024-05-01T10:00:00Z", "source": "status", "description": "Incident opened", "evidence": ["st_1"]},
            {"at": "2024-05-01T10:12:30Z", "source": "update", "description": "Rolled back v2.3",
             "evidence": ["upd_2", "deploy_5"]},
        ],
        "root_cause": "A change in commit abc1234 lowered a timeout (evidence: deploy_4, commit_9).",
        "contributing_factors": ["2 services were affected."],
        "what_went_well": ["Rollback within 12 minutes."],
        "what_went_poorly": [],
        "action_items": [{"title": "Add a regression test", "priority": "high", "suggested_owner": "alice"},
                         {"title": "Improve alerting", "priority": "low", "suggested_owner": None}],
        "confidence": {"level": "high", "reason": "An update states the cause."},
    }
    data.update(overrides)
    return dump(Sections.model_validate(data))


def _export(sections: dict, **overrides: object) -> str:
    args: dict = {"title": "Checkout errors", "incident_id": 42, "status": "published", "sections": sections,
                  "engine": "builtin", "published_at": "2024-05-02T09:00:00Z", "generated_at": "2024-05-01T11:00:00Z"}
    args.update(overrides)
    return to_markdown(**args)


def _tokens(markdown: str) -> list:
    parser = MarkdownIt("commonmark").enable("table")
    flat = []
    for token in parser.parse(markdown):
        flat.append(token)
        flat.extend(token.children or [])
    return flat


def _table_rows(markdown: str, header: str) -> list[str]:
    lines = markdown.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_every_section_heading_and_the_metadata_are_present():
    markdown = _export(_sections())
    assert markdown.startswith("# Postmortem: Checkout errors\n")
    positions = [markdown.index(f"\n{heading}\n") for heading in HEADINGS]
    assert positions == sorted(positions)
    for expected in ("- **Incident:** #42", "- **Status:** Published", "- **Severity:** SEV-2",
                     "- **Drafted by:** builtin engine", "- **Generated:** 2024-05-01 11:00 UTC",
                     "- **Published:** 2024-05-02 09:00 UTC", "- **Duration:** 23 minutes",
                     "- **Affected services:** checkout, payments", "**High** — An update states the cause."):
        assert expected in markdown


def test_timeline_and_action_items_render_as_tables():
    markdown = _export(_sections())
    timeline = _table_rows(markdown, "| Time | Source | Description | Evidence |")
    assert timeline == [
        "| 2024-05-01 10:00 UTC | status | Incident opened | `st_1` |",
        "| 2024-05-01 10:12:30 UTC | update | Rolled back v2.3 | `upd_2`, `deploy_5` |",
    ]
    actions = _table_rows(markdown, "| Action | Priority | Suggested owner |")
    assert actions == ["| Add a regression test | High | alice |", "| Improve alerting | Low | Unassigned |"]
    assert sum(1 for t in _tokens(markdown) if t.type == "table_open") == 2


def test_empty_sections_say_so():
    markdown = _export(_sections(timeline=[], action_items=[], contributing_factors=[],
                                 customer_impact={"description": "", "duration_minutes": None}),
                       published_at=None, engine=None)
    assert "_No timeline entries._" in markdown and "_No action items._" in markdown
    assert "## Contributing factors\n\n_None recorded._" in markdown
    assert "- **Duration:** Unknown (no resolution time)" in markdown
    assert "- **Published:** Not yet" in markdown and "Drafted by" not in markdown


def test_pipes_and_newlines_stay_inside_table_cells():
    sections = _sections(
        timeline=[{"at": "2024-05-01T10:00:00Z", "source": "update", "description": "a | b\nc || d",
                   "evidence": ["upd|1"]}],
        action_items=[{"title": "Fix x | y\n| z | w |", "priority": "high", "suggested_owner": "o|wner"}],
    )
    markdown = _export(sections)
    timeline = _table_rows(markdown, "| Time | Source | Description | Evidence |")
    assert timeline == ["| 2024-05-01 10:00 UTC | update | a \\| b c \\|\\| d | upd\\|1 |"]
    actions = _table_rows(markdown, "| Action | Priority | Suggested owner |")
    assert actions == ["| Fix x \\| y \\| z \\| w \\| | High | o\\|wner |"]
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert cells == ["2024-05-01 10:00 UTC", "update", "a | b c || d", "upd|1", "Fix x | y | z | w |", "High",
                     "o|wner"]


def test_raw_html_cannot_pass_through():
    sections = _sections(summary=EVIL, root_cause=f"Line one\n{EVIL}", what_went_well=[EVIL],
                         action_items=[{"title": EVIL, "priority": "high", "suggested_owner": "<b>x</b>"}],
                         confidence={"level": "low", "reason": EVIL})
    markdown = _export(sections, title="<img src=x onerror=alert(1)>")
    assert "<script>" not in markdown and "<img" not in markdown and "<b>" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert not [t for t in _tokens(markdown) if t.type.startswith("html")]


def test_link_and_image_syntax_is_neutralised():
    sections = _sections(summary=EVIL, what_went_poorly=["[x](javascript:alert(1))"],
                         timeline=[{"at": "2024-05-01T10:00:00Z", "source": "update", "description": EVIL,
                                    "evidence": ["[e](http://x)"]}])
    markdown = _export(sections)
    assert "](https://evil.example)" not in markdown.replace("\\]", "")  # brackets escaped
    assert "\\[click\\](https://evil.example)" in markdown
    kinds = {t.type for t in _tokens(markdown)}
    assert "link_open" not in kinds and "image" not in kinds


def test_block_syntax_in_user_text_cannot_create_headings_or_lists():
    markdown = _export(_sections(summary="# Owned\n1. first\n- item\n```\ncode"))
    kinds = [t.type for t in _tokens(markdown)]
    assert kinds.count("heading_open") == 1 + len(HEADINGS)
    assert "ordered_list_open" not in kinds and "fence" not in kinds
    assert escape_text("2) two") == "2\\) two" and escape_text("# h") == "\\# h"
