"""The postmortem's sections: one Pydantic schema for drafts, edits and exports."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blametrail.clock import require_aware

SECTION_KEYS = (
    "summary", "severity", "customer_impact", "timeline", "root_cause", "contributing_factors",
    "what_went_well", "what_went_poorly", "action_items", "confidence",
)
# how each built-in section is titled in pages and exports (templates may add extra sections with their own titles)
SECTION_TITLES = {
    "summary": "Summary", "severity": "Severity", "customer_impact": "Customer impact", "timeline": "Timeline",
    "root_cause": "Root cause", "contributing_factors": "Contributing factors", "what_went_well": "What went well",
    "what_went_poorly": "What went poorly", "action_items": "Action items", "confidence": "Confidence",
}
SEVERITIES = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")
TIMELINE_SOURCES = ("monitor", "deploy", "alert", "metric", "log", "update", "status")
ACTION_KINDS = ("detect", "mitigate", "prevent")
# Optional fields that are left out of stored and served sections while they hold their default (absent = unknown,
# or not after the resolution), so clients that know only the original shape see it unchanged.
_OPTIONAL_DEFAULTS = {"timeline": {"after_resolution": False},
                      "action_items": {"kind": None, "evidence": [], "tracked_as": None}}

_TEXT = 20_000  # generous cap per free-text field; protects storage and pages
_ITEMS = 500
_EXTRA = 20  # at most this many extra sections (an organization's template adds them)
_EXTRA_KEY = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def _check_extra(value: dict[str, str] | None) -> dict[str, str] | None:
    """Extra sections: template keys to Markdown text (the template decides which keys exist: orgs/templates.py)."""
    for key, text in (value or {}).items():
        if not _EXTRA_KEY.match(key):
            raise ValueError(f"extra section key {key[:50]!r}: a lowercase letter, then lowercase letters, digits or _")
        if len(text) > _TEXT:
            raise ValueError(f"extra section {key}: at most {_TEXT} characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerImpact(_Strict):
    description: str = Field("", max_length=_TEXT)
    duration_minutes: int | None = Field(None, ge=0, le=10_000_000)
    affected_services: list[str] = Field(default_factory=list, max_length=_ITEMS)


class TimelineItem(_Strict):
    at: datetime
    source: Literal["monitor", "deploy", "alert", "metric", "log", "update", "status"]
    description: str = Field(..., min_length=1, max_length=_TEXT)
    evidence: list[str] = Field(default_factory=list, max_length=50)
    after_resolution: bool = Field(False, description=(
        "True for an event after the incident was resolved (a fix deployed, a follow-up posted); such entries "
        "come last and their description starts with \"After resolution: \""))

    _check_at = field_validator("at")(require_aware)


class ActionItem(_Strict):
    title: str = Field(..., min_length=1, max_length=1_000)
    priority: Literal["high", "medium", "low"] = "medium"
    suggested_owner: str | None = Field(None, max_length=200, description=(
        "The team that owns the affected service, or null; never a person because they wrote a commit"))
    kind: Literal["detect", "mitigate", "prevent"] | None = Field(None, description=(
        "detect: notice it sooner; mitigate: end the impact sooner; prevent: stop it happening again"))
    evidence: list[str] = Field(default_factory=list, max_length=50, description="Ids of the evidence behind it")
    tracked_as: int | None = Field(None, ge=1, le=2**31 - 1, description=(
        "Set by BlameTrail, not the writer: an open action item of an earlier incident with the same service and "
        "intent; publishing links to it instead of tracking a duplicate"))


class Confidence(_Strict):
    level: Literal["high", "medium", "low"]
    reason: str = Field("", max_length=_TEXT)


class Sections(_Strict):
    """A complete set of postmortem sections."""

    summary: str = Field("", max_length=_TEXT)
    severity: Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"] = "SEV-3"
    customer_impact: CustomerImpact = Field(default_factory=CustomerImpact)
    timeline: list[TimelineItem] = Field(default_factory=list, max_length=5_000)
    root_cause: str = Field("", max_length=_TEXT)
    contributing_factors: list[str] = Field(default_factory=list, max_length=_ITEMS)
    what_went_well: list[str] = Field(default_factory=list, max_length=_ITEMS)
    what_went_poorly: list[str] = Field(default_factory=list, max_length=_ITEMS)
    action_items: list[ActionItem] = Field(default_factory=list, max_length=_ITEMS)
    confidence: Confidence = Field(default_factory=lambda: Confidence(level="low", reason=""))
    extra: dict[str, str] = Field(default_factory=dict, max_length=_EXTRA, description=(
        "The organization's extra sections (its template names them): key → Markdown; left out when empty"))

    _check_extra = field_validator("extra")(_check_extra)


class SectionsPatch(_Strict):
    """A partial update: only the sections given are replaced, each one whole."""

    summary: str | None = Field(None, max_length=_TEXT)
    severity: Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"] | None = None
    customer_impact: CustomerImpact | None = None
    timeline: list[TimelineItem] | None = Field(None, max_length=5_000)
    root_cause: str | None = Field(None, max_length=_TEXT)
    contributing_factors: list[str] | None = Field(None, max_length=_ITEMS)
    what_went_well: list[str] | None = Field(None, max_length=_ITEMS)
    what_went_poorly: list[str] | None = Field(None, max_length=_ITEMS)
    action_items: list[ActionItem] | None = Field(None, max_length=_ITEMS)
    confidence: Confidence | None = None
    extra: dict[str, str] | None = Field(None, max_length=_EXTRA)

    _check_extra = field_validator("extra")(_check_extra)


def dump(sections: Sections) -> dict:
    """Return JSON-ready sections (timestamps as ISO strings with Z; optional fields left out at their default)."""
    data = sections.model_dump(mode="json")
    for item in data["timeline"]:
        item["at"] = item["at"].replace("+00:00", "Z")
    for key, defaults in _OPTIONAL_DEFAULTS.items():
        for item in data[key]:
            for field, default in defaults.items():
                if item.get(field) == default:
                    item.pop(field, None)
    if not data["extra"]:  # why: postmortems of organizations without extra sections keep their original shape
        data.pop("extra")
    return data
