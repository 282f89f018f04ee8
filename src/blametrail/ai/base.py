"""The drafting-engine seam: the interface the built-in engine and the LLM providers implement."""

from __future__ import annotations

from typing import Protocol

from blametrail.analysis.evidence import EvidencePack
from blametrail.errors import UpstreamError
from blametrail.settings import Settings


class DraftingEngine(Protocol):
    """Turn an evidence pack into postmortem sections (a dict valid against postmortems.sections.Sections)."""

    @property
    def label(self) -> str: ...  # "builtin" | "openai:<model>" | "anthropic:<model>"

    def draft(self, pack: EvidencePack) -> dict: ...


class BuiltinEngine:
    """The offline, deterministic engine: analysis.writer over the evidence."""

    label = "builtin"

    def draft(self, pack: EvidencePack) -> dict:
        """Write every section from the evidence."""
        from blametrail.analysis.writer import write_postmortem

        return write_postmortem(pack)


class UnavailableEngine:
    """A configured provider this installation cannot use; fails with the reason so the built-in draft is used."""

    def __init__(self, name: str, model: str | None, reason: str) -> None:
        self.label = f"{name}:{model or 'unset'}"
        self._reason = reason

    def draft(self, pack: EvidencePack) -> dict:
        """Fail with the reason."""
        raise UpstreamError(self._reason)


def engine_for(settings: Settings) -> DraftingEngine:
    """Return the engine the settings select (static registry; LLM providers arrive in a later release)."""
    if settings.ai_engine == "builtin":
        return BuiltinEngine()
    return UnavailableEngine(settings.ai_engine, settings.ai_model,
                             f"The {settings.ai_engine} engine is not available in this version of BlameTrail; "
                             "set BLAMETRAIL_AI_ENGINE=builtin.")
