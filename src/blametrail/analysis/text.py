"""Text helpers of the analysis core: counts in words, clipped quotes, sentences."""

from __future__ import annotations

import re

MAX_QUOTE = 280


def plural(count: int, word: str) -> str:
    """Return "1 minute" / "3 minutes" style counts."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    """Collapse whitespace and truncate to limit characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def sentences(text: str) -> list[str]:
    """Split free text into whitespace-collapsed sentences (curly apostrophes made straight)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.replace("’", "'"))
    return [" ".join(part.split()) for part in parts if part.strip()]
