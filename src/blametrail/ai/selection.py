"""How an organization's drafting engine is chosen: its own AI configuration, else the installation's settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from blametrail.ai import providers
from blametrail.ai import service as ai_service
from blametrail.ai.llm import LLMEngine
from blametrail.ai.models import AIConfig
from blametrail.ai.providers import REGISTRY, ProviderSpec
from blametrail.analysis.evidence import EvidencePack
from blametrail.crypto import SecretBox
from blametrail.engines.base import NO_CONTEXT, Draft, DraftContext, Engine, Summary
from blametrail.engines.builtin import BuiltinEngine
from blametrail.errors import UpstreamError
from blametrail.netguard import policy_from
from blametrail.settings import Settings

PROVIDER_OPTIONS = ("api_version", "azure_endpoint", "max_tokens_param")  # read by the provider modules


def engine_of_org(*, session: Session, settings: Settings, org_id: int, box: SecretBox) -> Engine:
    """Return the engine an organization drafts with (read in the caller's short transaction; no model call)."""
    return engine_for(settings, ai_service.get_config(session=session, org_id=org_id), box)


class UnavailableEngine:
    """A configured provider this installation cannot use; fails with the reason so the built-in draft is used."""

    def __init__(self, name: str, model: str | None, reason: str) -> None:
        self.label = f"{name}:{model or 'unset'}"
        self.reason = reason

    def draft(self, pack: EvidencePack, context: DraftContext = NO_CONTEXT) -> Draft:
        """Fail with the reason."""
        raise UpstreamError(self.reason)

    def summarize(self, pack: EvidencePack) -> Summary:
        """Fail with the reason."""
        raise UpstreamError(self.reason)


def engine_for(settings: Settings, config: AIConfig | None = None, box: SecretBox | None = None) -> Engine:
    """Return the engine an organization's configuration selects, else the installation settings' (static registry)."""
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
        options = ai_service.installation_options(settings)
    if name == "builtin":
        return BuiltinEngine()
    if name not in REGISTRY:
        return UnavailableEngine(name, model, f"The {name} engine is not available in this version of BlameTrail; "
                                              "choose builtin, openai or anthropic.")
    if not model:
        return UnavailableEngine(name, model, f"No model is configured for the {name} engine: set BLAMETRAIL_AI_MODEL "
                                              "or the organization's AI model.")
    spec = ProviderSpec(name=name, model=model, base_url=base_url or None, api_key=api_key or None,
                        output_mode=output_mode or None,
                        options={k: v for k, v in options.items() if k in PROVIDER_OPTIONS and v})
    try:
        providers.output_mode(spec)
    except ValueError:
        return UnavailableEngine(name, model, f"The {output_mode} output mode does not work with the {name} engine; "
                                              f"choose one of: {', '.join(providers.module(name).OUTPUT_MODES)}.")

    def opt(key: str, default):
        value = options.get(key)
        return default if value is None else value

    return LLMEngine(
        spec, timeout_seconds=float(opt("timeout_seconds", settings.ai_timeout_seconds)),
        max_retries=int(opt("max_retries", settings.ai_max_retries)),
        retry_max_wait_seconds=float(opt("retry_max_wait_seconds", settings.ai_retry_max_wait_seconds)),
        context_tokens=int(opt("context_tokens", settings.ai_context_tokens)),
        max_output_tokens=int(opt("max_output_tokens", settings.ai_max_output_tokens)),
        deadline_seconds=float(opt("deadline_seconds", settings.ai_deadline_seconds)),
        instructions_in_user_message=bool(opt("instructions_in_user_message", settings.ai_instructions_in_user_message)),
        outbound=policy_from(settings),
    )


def _installation_base_url(settings: Settings, name: str) -> str | None:
    return {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}.get(name)


def _installation_api_key(settings: Settings, name: str) -> str | None:
    return {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(name)
