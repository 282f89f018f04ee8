"""OpenAI and any OpenAI-compatible endpoint (Azure OpenAI, Ollama, vLLM, LM Studio, llama.cpp) for pydantic-ai."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from blametrail.ai.providers import ProviderSpec

DEFAULT_OUTPUT_MODE = "tool"  # why: llama.cpp and some servers reject json_schema; tool calls are the widest-supported
OUTPUT_MODES = ("tool", "native", "prompted", "json_object")
# why: passed explicitly so the SDK never falls back to the unprefixed OPENAI_BASE_URL variable (only BLAMETRAIL_
# settings configure BlameTrail)
OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")


def _is_azure(spec: ProviderSpec) -> bool:
    return bool(spec.options.get("azure_endpoint") or spec.options.get("api_version"))


def is_openai_itself(spec: ProviderSpec) -> bool:
    """Tell whether the endpoint is OpenAI's own API (or Azure OpenAI), not another OpenAI-compatible server."""
    if _is_azure(spec) or not spec.base_url:
        return True
    host = (urlsplit(spec.base_url).hostname or "").lower()
    return host == "api.openai.com"


def max_tokens_param(spec: ProviderSpec) -> str:
    """Return the request field that carries the output cap: the `max_tokens_param` option, else by endpoint.

    OpenAI's own API takes `max_completion_tokens`; other OpenAI-compatible servers (llama.cpp, llama-cpp-python,
    older vLLM and Ollama) know only `max_tokens` and silently ignore the other, writing until their context is full.
    """
    chosen = spec.options.get("max_tokens_param")
    if chosen in MAX_TOKENS_PARAMS:
        return chosen
    return "max_completion_tokens" if is_openai_itself(spec) else "max_tokens"


def describe(spec: ProviderSpec) -> str:
    """Name the endpoint in plain words."""
    if _is_azure(spec):
        return f"Azure OpenAI at {spec.options.get('azure_endpoint') or spec.base_url}"
    if spec.base_url:
        return f"OpenAI-compatible server at {spec.base_url}"
    return "OpenAI"


def grammar_schema(schema: Any) -> Any:
    """Return the schema as a grammar for a server to enforce: every property required, no upper length bounds.

    An upper bound becomes one grammar rule per allowed repetition: llama-cpp-python crashed (a stack overflow in
    its grammar code, taking the server down) on the postmortem schema's 20,000-character limits, and ran fine
    without them. Requiring every property makes the model write each section instead of an empty object; the
    answer is still validated against the full schema afterwards.
    """
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_schema(v) for k, v in schema.items() if k not in ("maxLength", "maxItems")}
    if isinstance(out.get("properties"), dict) and out["properties"]:
        out["required"] = list(out["properties"])
    return out


def request_settings(spec: ProviderSpec, schema: dict) -> dict[str, Any]:
    """Return extra model settings: in json_object mode, the schema as a grammar-constrained JSON response format."""
    if spec.output_mode == "json_object":
        # why: llama.cpp-style servers turn this schema into a grammar, so the model can only write valid JSON;
        # pydantic-ai sends no schema with json_object, so it travels in the request body directly
        return {"extra_body": {"response_format": {"type": "json_object", "schema": grammar_schema(schema)}}}
    return {}


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
        provider = OpenAIProvider(base_url=spec.base_url or OPENAI_BASE_URL, api_key=spec.api_key or "api-key-not-set",
                                  http_client=http_client)
    profile: dict[str, Any] = dict(provider.model_profile(spec.model) or {})
    profile["openai_chat_supports_max_completion_tokens"] = max_tokens_param(spec) == "max_completion_tokens"
    if spec.output_mode in ("prompted", "json_object"):
        # why: "prompted" is for servers that accept no response_format at all; json_object sends its own (with the
        # schema, see request_settings), so pydantic-ai must not add a bare one
        profile["supports_json_object_output"] = False
    return OpenAIChatModel(spec.model, provider=provider, profile=profile)
