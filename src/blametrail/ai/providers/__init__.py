"""The static registry of LLM providers: each builds pydantic-ai model objects lazily (their imports are slow)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

# name -> module with `build_model(spec, http_client)`, `describe(spec)`, `request_settings(spec, schema)`,
# `OUTPUT_MODES` (those it supports) and `DEFAULT_OUTPUT_MODE`
REGISTRY: dict[str, str] = {
    "openai": "blametrail.ai.providers.openai",
    "anthropic": "blametrail.ai.providers.anthropic",
}
# tool: a forced tool call; native: a JSON-schema response format; prompted: the schema in the prompt, plain text
# back; json_object: prompted, plus `response_format: {"type": "json_object", "schema": …}` (llama.cpp-style
# servers constrain the output to the schema with a grammar)
OUTPUT_MODES = ("tool", "native", "prompted", "json_object")


@dataclass(frozen=True)
class ProviderSpec:
    """Everything needed to reach one model: provider name, model, endpoint, key and per-provider options."""

    name: str  # a REGISTRY key
    model: str
    base_url: str | None = None
    api_key: str | None = None
    output_mode: str | None = None  # tool | native | prompted | json_object; None = the provider's default
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __repr__(self) -> str:  # why: never print the key in logs or tracebacks
        return f"ProviderSpec(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"


def module(name: str):
    """Return the provider module registered under a name."""
    try:
        return importlib.import_module(REGISTRY[name])
    except KeyError:
        raise ValueError(f"unknown AI provider {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def output_mode(spec: ProviderSpec) -> str:
    """Return the output mode to use: the configured one, else the provider's default."""
    provider = module(spec.name)
    mode = spec.output_mode or provider.DEFAULT_OUTPUT_MODE
    if mode not in provider.OUTPUT_MODES:
        raise ValueError(f"unknown output mode {mode!r} for {spec.name}; choose one of: {', '.join(provider.OUTPUT_MODES)}")
    return mode


def describe(spec: ProviderSpec) -> str:
    """Name the provider in plain words for error messages ("Anthropic", "OpenAI-compatible server at …")."""
    return module(spec.name).describe(spec)


def build_model(spec: ProviderSpec, http_client: Any):
    """Return a pydantic-ai Model for the spec, sending its requests through the given httpx2 client."""
    return module(spec.name).build_model(spec, http_client)


def request_settings(spec: ProviderSpec, schema: dict) -> dict[str, Any]:
    """Return extra pydantic-ai model settings a provider needs for the output mode (e.g. a JSON response format)."""
    return module(spec.name).request_settings(spec, schema)
