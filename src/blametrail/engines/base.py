"""The drafting contract: what every engine takes and returns; an engine keeps no state between calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from blametrail.analysis import severity
from blametrail.analysis.evidence import EvidencePack
from blametrail.errors import UpstreamError


@dataclass
class Audit:
    """What one model call sent and got back (stored on the GenerationRun; shown to owners and admins)."""

    prompt_version: str | None = None
    prompt: dict | None = None  # Prompt.to_json() (+ grounding notes)
    response_raw: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: int | None = None


@dataclass(frozen=True)
class Draft:
    """Postmortem sections (a dict valid against engines.sections.Sections) and the model call's audit, if any."""

    sections: dict
    audit: Audit | None = None


@dataclass(frozen=True)
class Summary:
    """A grounded live summary (a dict valid against engines.summary.SummaryOut) and the model call's audit, if any."""

    content: dict
    audit: Audit | None = None


@dataclass(frozen=True)
class DraftContext:
    """What a draft is asked to respect besides the evidence: the team's own text and the organization's template.

    This is the one hook through which a regeneration's current sections and a template's per-section instructions,
    extra sections and service owners reach every engine (the built-in one and the model's prompt alike).
    """

    current_sections: dict | None = None  # a regeneration builds on what people wrote
    edited_keys: tuple[str, ...] = ()  # sections people changed since the last draft (kept unless overwritten)
    instructions: Mapping[str, str] = field(default_factory=dict)  # section → the organization's instruction
    service_owners: Mapping[str, str] = field(default_factory=dict)  # service → the team that owns its fixes
    # the template's extra sections, (key, title, instruction): a model writes them in `extra`; no other keys
    extra_sections: tuple[tuple[str, str, str], ...] = ()
    # the organization's severity scale (templates); empty = the built-in one. Severity is rated from these rules
    # by grounding and the built-in writer, and a model reads their meanings in its prompt
    severity_definitions: tuple[severity.Definition, ...] = ()
    # hears the step a draft is at ("asking_model", "checking_citations"), for the card's progress; never fails it
    on_step: Callable[[str], None] | None = field(default=None, compare=False)

    @property
    def severity_scale(self) -> tuple[severity.Definition, ...]:
        """Return the severity definitions in effect: the organization's, else the built-in ones."""
        return self.severity_definitions or severity.DEFAULT_DEFINITIONS

    def step(self, name: str) -> None:
        """Tell whoever listens which step the draft is at."""
        if self.on_step is not None:
            self.on_step(name)


NO_CONTEXT = DraftContext()


class EngineFailed(UpstreamError):
    """An engine's model call failed; carries what was sent so the run still records it."""

    def __init__(self, message: str, audit: Audit | None) -> None:
        super().__init__(message)
        self.audit = audit


class Engine(Protocol):
    """Turn an evidence pack into a draft or a live summary.

    A regeneration's current sections and edited keys, and the template's instructions, travel in `context`.
    Failures raise UpstreamError (EngineFailed when a model was called) with a message for people.
    """

    @property
    def label(self) -> str: ...  # "builtin" | "openai:<model>" | "anthropic:<model>"

    def draft(self, pack: EvidencePack, context: DraftContext = NO_CONTEXT) -> Draft: ...

    def summarize(self, pack: EvidencePack) -> Summary: ...


def keep_template_extra(sections: dict, context: DraftContext) -> dict:
    """Return a draft whose `extra` holds only the template's extra sections (a model may invent others)."""
    extra = sections.get("extra")
    if not extra:
        return sections
    allowed = {key for key, _, _ in context.extra_sections}
    kept = {k: v for k, v in extra.items() if k in allowed and isinstance(v, str) and v.strip()}
    out = {k: v for k, v in sections.items() if k != "extra"}
    if kept:
        out["extra"] = kept
    return out
