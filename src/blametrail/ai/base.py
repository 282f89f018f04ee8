"""The drafting-engine seam: the interface the built-in engine and the LLM providers implement, and engine selection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from blametrail.analysis.evidence import EvidencePack
from blametrail.errors import UpstreamError
from blametrail.settings import Settings

if TYPE_CHECKING:
    from blametrail.ai.models import AIConfig
    from blametrail.crypto import SecretBox


@dataclass
class Audit:
    """What one model call sent and got back (stored on the GenerationRun; shown to owners and admins)."""

    prompt_version: str | None = None
    prompt: dict | None = None  # Prompt.to_json() (+ grounding notes)
    response_raw: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: int | None = None


class DraftingEngine(Protocol):
    """Turn an evidence pack into postmortem sections (a dict valid against postmortems.sections.Sections)."""

    @property
    def label(self) -> str: ...  # "builtin" | "openai:<model>" | "anthropic:<model>"

    audit: Audit | None  # the last call's audit (LLM engines), None for the built-in engine

    def draft(self, pack: EvidencePack) -> dict: ...


class BuiltinEngine:
    """The offline, deterministic engine: analysis.writer over the evidence."""

    label = "builtin"
    audit: Audit | None = None

    def draft(self, pack: EvidencePack) -> dict:
        """Write every section from the evidence."""
        from blametrail.analysis.writer import write_postmortem

        return write_postmortem(pack)


class UnavailableEngine:
    """A configured provider this installation cannot use; fails with the reason so the built-in draft is used."""

    audit: Audit | None = None

    def __init__(self, name: str, model: str | None, reason: str) -> None:
        self.label = f"{name}:{model or 'unset'}"
        self._reason = reason

    def draft(self, pack: EvidencePack) -> dict:
        """Fail with the reason."""
        raise UpstreamError(self._reason)

    def summarize(self, pack: EvidencePack) -> dict:
        """Fail with the reason."""
        raise UpstreamError(self._reason)


class PerOrgEngine:
    """The installation's engine, which a job resolves to the organization's own once it knows the organization."""

    def __init__(self, default: DraftingEngine, resolve: Callable[[int], DraftingEngine]) -> None:
        self._default = default
        self._resolve = resolve
        self.label = default.label

    @property
    def audit(self) -> Audit | None:
        return getattr(self._default, "audit", None)

    def draft(self, pack: EvidencePack) -> dict:
        """Draft with the installation's engine."""
        return self._default.draft(pack)

    def for_org(self, org_id: int) -> DraftingEngine:
        """Return the engine an organization uses (its own configuration, else the installation's)."""
        return self._resolve(org_id)


# option keys an organization may set (also accepted by the API); values are checked there
ENGINE_OPTIONS = ("timeout_seconds", "max_retries", "retry_max_wait_seconds", "context_tokens", "max_output_tokens",
                  "api_version", "azure_endpoint")


def engine_for(settings: Settings, config: AIConfig | None = None, box: SecretBox | None = None) -> DraftingEngine:
    """Return the engine an organization's configuration selects, else the installation settings' (static registry)."""
    from blametrail.ai.providers import REGISTRY

    if config is not None:
        name, model, base_url = config.engine, config.model, config.base_url
        output_mode, options = config.output_mode or settings.ai_output_mode, dict(config.options or {})
        api_key = None
        if config.api_key_encrypted:
            if box is None:
                return UnavailableEngine(name, model, "The organization's AI API key cannot be read here (no secret box).")
            try:
                api_key = box.decrypt(config.api_key_encrypted)
            except ValueError as exc:
                return UnavailableEngine(name, model, f"The organization's AI API key is unusable: {exc}.")
        elif name == settings.ai_engine and (base_url or None) == (_installation_base_url(settings, name) or None):
            # why: the installation's key may only go to the installation's own endpoint, never to an org's server
            api_key = _installation_api_key(settings, name)
        if not base_url and name == settings.ai_engine:
            base_url = _installation_base_url(settings, name)
    else:
        name, model, output_mode = settings.ai_engine, settings.ai_model, settings.ai_output_mode
        base_url, api_key = _installation_base_url(settings, name), _installation_api_key(settings, name)
        options = {"api_version": settings.openai_api_version} if name == "openai" and settings.openai_api_version else {}
    if name == "builtin":
        return BuiltinEngine()
    if name not in REGISTRY:
        return UnavailableEngine(name, model, f"The {name} engine is not available in this version of BlameTrail; "
                                              "choose builtin, openai or anthropic.")
    if not model:
        return UnavailableEngine(name, model, f"No model is configured for the {name} engine: set BLAMETRAIL_AI_MODEL "
                                              "or the organization's AI model.")
    from blametrail.ai.llm import LLMEngine  # why: cheap; pydantic-ai itself is imported only when a call is made
    from blametrail.ai.providers import ProviderSpec
    from blametrail.netguard import policy_from

    spec = ProviderSpec(name=name, model=model, base_url=base_url or None, api_key=api_key or None,
                        output_mode=output_mode or None,
                        options={k: v for k, v in options.items() if k in ("api_version", "azure_endpoint") and v})

    def opt(key: str, default):
        value = options.get(key)
        return default if value is None else value

    return LLMEngine(
        spec, timeout_seconds=float(opt("timeout_seconds", settings.ai_timeout_seconds)),
        max_retries=int(opt("max_retries", settings.ai_max_retries)),
        retry_max_wait_seconds=float(opt("retry_max_wait_seconds", settings.ai_retry_max_wait_seconds)),
        context_tokens=int(opt("context_tokens", settings.ai_context_tokens)),
        max_output_tokens=int(opt("max_output_tokens", settings.ai_max_output_tokens)),
        outbound=policy_from(settings),
    )


def _installation_base_url(settings: Settings, name: str) -> str | None:
    return {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}.get(name)


def _installation_api_key(settings: Settings, name: str) -> str | None:
    return {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(name)
