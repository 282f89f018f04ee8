"""Per-organization AI configuration: read (never the key), replace (key encrypted at rest), remove."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.ai import providers
from blametrail.ai.models import AIConfig
from blametrail.clock import iso
from blametrail.crypto import SecretBox
from blametrail.errors import NotFound, ValidationFailed
from blametrail.netguard import OutboundPolicy
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.settings import Settings

ENGINES = ("builtin", *providers.REGISTRY)  # the registry is the only list of model providers
OUTPUT_MODES = providers.OUTPUT_MODES
OPENAI_ONLY_MODES = ("json_object",)  # a response format only OpenAI-compatible servers take
_NUMERIC = {"timeout_seconds": (1, 900), "max_retries": (0, 10), "retry_max_wait_seconds": (0, 3600),
            "context_tokens": (1_000, 2_000_000), "max_output_tokens": (256, 200_000), "deadline_seconds": (5, 3600)}
_CHOICES = {"max_tokens_param": ("max_tokens", "max_completion_tokens")}
_FLAGS = ("instructions_in_user_message",)

# option keys an organization may set (also accepted by the API); values are checked below (docs/models.md)
ENGINE_OPTIONS = ("timeout_seconds", "max_retries", "retry_max_wait_seconds", "context_tokens", "max_output_tokens",
                  "deadline_seconds", "max_tokens_param", "instructions_in_user_message", "api_version",
                  "azure_endpoint")


def get_config(*, session: Session, org_id: int) -> AIConfig | None:
    """Return the organization's own AI configuration, or None (it uses the installation's)."""
    return session.scalar(select(AIConfig).where(AIConfig.org_id == org_id))


def to_read(*, settings: Settings, config: AIConfig | None) -> dict:
    """Return the API shape of the AI configuration in effect; the API key is never included, only whether one is set."""
    if config is None:
        name = settings.ai_engine
        base_url = {"openai": settings.openai_base_url, "anthropic": settings.anthropic_base_url}.get(name)
        key = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(name)
        options = installation_options(settings)
        return {"engine": name, "model": settings.ai_model if name != "builtin" else None, "base_url": base_url,
                "output_mode": settings.ai_output_mode, "has_api_key": bool(key), "options": options,
                "source": "installation", "updated_at": None}
    return {"engine": config.engine, "model": config.model, "base_url": config.base_url,
            "output_mode": config.output_mode, "has_api_key": bool(config.api_key_encrypted),
            "options": dict(config.options or {}), "source": "organization", "updated_at": iso(config.updated_at)}


def read(*, session: Session, actor: Actor, settings: Settings) -> dict:
    """Return the configuration in effect for the actor's organization (owners and admins)."""
    require(actor.role, Action.MANAGE)
    return to_read(settings=settings, config=get_config(session=session, org_id=actor.org_id))


def validate(
    *, engine: str, model: str | None = None, base_url: str | None = None, output_mode: str | None = None,
    options: dict[str, Any] | None = None, policy: OutboundPolicy | None = None,
) -> tuple[str | None, str | None, dict]:
    """Check an AI configuration; return (model, base URL, options) cleaned, or raise ValidationFailed with reasons."""
    errors = []
    if engine not in ENGINES:
        errors.append({"loc": ["engine"], "msg": f"choose one of: {', '.join(ENGINES)}"})
    model = (model or "").strip() or None
    if engine in ("openai", "anthropic") and not model:
        errors.append({"loc": ["model"], "msg": f"the {engine} engine needs a model name"})
    base_url = (base_url or "").strip().rstrip("/") or None
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append({"loc": ["base_url"], "msg": "must be an http:// or https:// URL"})
        elif parts.username or parts.password:
            errors.append({"loc": ["base_url"], "msg": "must not carry credentials; send the key as api_key"})
        elif sentence := (policy or OutboundPolicy()).refusal_for_url(base_url):
            errors.append({"loc": ["base_url"], "msg": sentence})
    if output_mode is not None and output_mode not in OUTPUT_MODES:
        errors.append({"loc": ["output_mode"], "msg": f"choose one of: {', '.join(OUTPUT_MODES)}"})
    elif output_mode in OPENAI_ONLY_MODES and engine != "openai":
        errors.append({"loc": ["output_mode"], "msg": f"{output_mode} is for OpenAI-compatible servers (engine openai)"})
    clean, option_errors = _options(options or {}, policy or OutboundPolicy())
    errors += option_errors
    if errors:
        raise ValidationFailed("The AI configuration is not valid: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors), errors=errors)
    return model, base_url, clean


def put(
    *, session: Session, actor: Actor, box: SecretBox, now: datetime, engine: str, model: str | None = None,
    base_url: str | None = None, api_key: str | None = None, output_mode: str | None = None,
    options: dict[str, Any] | None = None, policy: OutboundPolicy | None = None,
) -> AIConfig:
    """Replace the organization's AI configuration (owner only).

    The stored key is kept when `api_key` is omitted, unless the engine or base URL changes (a key never follows
    the configuration to another server); an empty `api_key` removes it.
    """
    require(actor.role, Action.ORG_SETTINGS)
    model, base_url, clean = validate(engine=engine, model=model, base_url=base_url, output_mode=output_mode,
                                      options=options, policy=policy)
    config = get_config(session=session, org_id=actor.org_id)
    if config is None:
        config = AIConfig(org_id=actor.org_id, engine=engine, created_at=now, updated_at=now, options={})
        session.add(config)
    elif api_key is None and not keeps_key(config, engine=engine, base_url=base_url):
        config.api_key_encrypted = None
    config.engine, config.model, config.base_url, config.output_mode = engine, model, base_url, output_mode
    config.options = clean
    if api_key is not None:
        config.api_key_encrypted = box.encrypt(api_key.strip()) if api_key.strip() else None
    config.updated_by_user_id, config.updated_at = actor.user_id, now
    session.flush()
    return config


def keeps_key(config: AIConfig, *, engine: str, base_url: str | None) -> bool:
    """Tell whether a stored key may stay with a changed configuration (same engine and server only)."""
    return config.engine == engine and (config.base_url or None) == (base_url or None)


def installation_options(settings: Settings) -> dict:
    """Return the provider options the installation's settings set (shown like an organization's options)."""
    options: dict[str, Any] = {}
    if settings.ai_engine == "openai" and settings.openai_api_version:
        options["api_version"] = settings.openai_api_version
    if settings.ai_engine == "openai" and settings.ai_max_tokens_param:
        options["max_tokens_param"] = settings.ai_max_tokens_param
    if settings.ai_instructions_in_user_message:
        options["instructions_in_user_message"] = True
    return options


def delete(*, session: Session, actor: Actor) -> None:
    """Remove the organization's configuration: it goes back to the installation's settings (owner only)."""
    require(actor.role, Action.ORG_SETTINGS)
    config = get_config(session=session, org_id=actor.org_id)
    if config is None:
        raise NotFound("This organization has no AI configuration of its own; it uses the installation's.")
    session.delete(config)
    session.flush()


def _options(options: dict[str, Any], policy: OutboundPolicy) -> tuple[dict, list[dict]]:
    clean, errors = {}, []
    for key, value in options.items():
        if key not in ENGINE_OPTIONS:
            errors.append({"loc": ["options", key], "msg": f"unknown option; known: {', '.join(ENGINE_OPTIONS)}"})
        elif value is None:
            continue
        elif key in _NUMERIC:
            low, high = _NUMERIC[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                errors.append({"loc": ["options", key], "msg": f"must be a number from {low} to {high}"})
            else:
                clean[key] = value
        elif key in _FLAGS:
            if not isinstance(value, bool):
                errors.append({"loc": ["options", key], "msg": "must be true or false"})
            else:
                clean[key] = value
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                errors.append({"loc": ["options", key], "msg": f"choose one of: {', '.join(_CHOICES[key])}"})
            else:
                clean[key] = value
        elif not isinstance(value, str) or not value.strip() or len(value) > 2000:
            errors.append({"loc": ["options", key], "msg": "must be a non-empty string"})
        elif key == "azure_endpoint" and urlsplit(value).scheme not in ("http", "https"):
            errors.append({"loc": ["options", key], "msg": "must be an http:// or https:// URL"})
        elif key == "azure_endpoint" and (sentence := policy.refusal_for_url(value.strip())):
            errors.append({"loc": ["options", key], "msg": sentence})
        else:
            clean[key] = value.strip()
    return clean, errors
