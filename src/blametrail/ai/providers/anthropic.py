"""Anthropic's Messages API (base URL configurable, e.g. for a gateway) for pydantic-ai."""

from __future__ import annotations

from typing import Any

from blametrail.ai.providers import ProviderSpec

DEFAULT_OUTPUT_MODE = "tool"
OUTPUT_MODES = ("tool", "native", "prompted")
# why: passed explicitly so the SDK never falls back to the unprefixed ANTHROPIC_BASE_URL variable (only BLAMETRAIL_
# settings configure BlameTrail)
ANTHROPIC_BASE_URL = "https://api.anthropic.com"


def describe(spec: ProviderSpec) -> str:
    """Name the endpoint in plain words."""
    return f"Anthropic at {spec.base_url}" if spec.base_url and "api.anthropic.com" not in spec.base_url else "Anthropic"


def request_settings(spec: ProviderSpec, schema: dict) -> dict[str, Any]:
    """Return extra model settings (none: the output modes need nothing beyond what pydantic-ai sends)."""
    return {}


def build_model(spec: ProviderSpec, http_client: Any):
    """Return an Anthropic model (imports pydantic-ai's Anthropic support only now: it is slow to import)."""
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key=spec.api_key or "api-key-not-set", base_url=spec.base_url or ANTHROPIC_BASE_URL,
                                 http_client=http_client)
    return AnthropicModel(spec.model, provider=provider)
