"""OpenAI and any OpenAI-compatible endpoint (Azure OpenAI, Ollama, vLLM, LM Studio, llama.cpp) for pydantic-ai."""

from __future__ import annotations

from typing import Any

from blametrail.ai.providers import ProviderSpec

DEFAULT_OUTPUT_MODE = "tool"  # why: llama.cpp and some servers reject json_schema; tool calls are the widest-supported


def _is_azure(spec: ProviderSpec) -> bool:
    return bool(spec.options.get("azure_endpoint") or spec.options.get("api_version"))


def describe(spec: ProviderSpec) -> str:
    """Name the endpoint in plain words."""
    if _is_azure(spec):
        return f"Azure OpenAI at {spec.options.get('azure_endpoint') or spec.base_url}"
    if spec.base_url:
        return f"OpenAI-compatible server at {spec.base_url}"
    return "OpenAI"


def build_model(spec: ProviderSpec, http_client: Any):
    """Return an OpenAI chat model (imports pydantic-ai's OpenAI support only now: it is slow to import)."""
    from pydantic_ai.models.openai import OpenAIChatModel

    if _is_azure(spec):
        from pydantic_ai.providers.azure import AzureProvider

        provider = AzureProvider(azure_endpoint=spec.options.get("azure_endpoint") or spec.base_url,
                                 api_version=spec.options.get("api_version"), api_key=spec.api_key or "api-key-not-set",
                                 http_client=http_client)
    else:
        from pydantic_ai.providers.openai import OpenAIProvider

        # why: local OpenAI-compatible servers need no key, but the SDK insists on a non-empty one
        provider = OpenAIProvider(base_url=spec.base_url, api_key=spec.api_key or "api-key-not-set",
                                  http_client=http_client)
    if spec.output_mode == "prompted":
        # why: "prompted" is for servers that accept no response_format at all; keep JSON mode off too
        base = provider.model_profile(spec.model) or {}
        return OpenAIChatModel(spec.model, provider=provider, profile={**base, "supports_json_object_output": False})
    return OpenAIChatModel(spec.model, provider=provider)
