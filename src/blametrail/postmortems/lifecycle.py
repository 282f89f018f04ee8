"""The postmortem state machine, as pure functions."""

from __future__ import annotations

STATUSES = ("queued", "generating", "draft", "edited", "published", "failed")
IN_FLIGHT = frozenset({"queued", "generating"})
REGENERATABLE = frozenset({"draft", "edited", "failed"})
PUBLISHABLE = frozenset({"draft", "edited"})

LABELS = {
    "queued": "Queued", "generating": "Generating", "draft": "Draft", "edited": "Edited",
    "published": "Published", "failed": "Failed",
}


def status_after_edit(status: str) -> str:
    """Return the status after a person saves changes (published stays published; in-flight stays in flight)."""
    if status == "published" or status in IN_FLIGHT:
        return status
    return "edited"


def merge_draft(draft: dict, current: dict | None, edited_keys: list[str], overwrite: bool) -> tuple[dict, list[str]]:
    """Merge a new AI draft into the current sections, keeping sections people edited unless overwriting."""
    if overwrite or not current:
        return dict(draft), []
    kept = sorted(k for k in edited_keys if k in current)
    merged = dict(draft)
    for key in kept:
        merged[key] = current[key]
    return merged, kept


def status_after_draft(kept_keys: list[str]) -> str:
    """Return the status once a draft lands: edited when human sections were kept, else draft."""
    return "edited" if kept_keys else "draft"


def changed_since_publish(current: dict | None, published: dict | None) -> bool:
    """Return whether the current sections differ from the last published ones (nothing published: changed)."""
    return published is None or (current or {}) != published
