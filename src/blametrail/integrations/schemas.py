"""Connection API schemas: what an admin configures, and what the API shows (never the credentials)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blametrail.integrations.base import REGISTRY
from blametrail.integrations.provider import COMMON_OPTIONS


def _by_provider(help_of) -> list[str]:
    """Join each provider's words for a field, naming providers that share the same words together."""
    groups: dict[str, list[str]] = {}
    for provider in REGISTRY.values():
        if help_of(provider):
            groups.setdefault(help_of(provider), []).append(provider.label)
    return [f"{'/'.join(labels)}: {words}" for words, labels in groups.items()]


Provider = Literal[tuple(REGISTRY)]  # type: ignore[valid-type]  # why: the registry is the only list of providers
Kind = Literal["metric", "log"]


class SignalIn(BaseModel):
    """One query run for the services it covers; `$service` in the query is replaced by the service name."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\- ]+$",
                      description="Shown in evidence, e.g. error_rate or checkout_errors.")
    kind: Kind = "metric"
    query: str | dict[str, Any] = Field(..., description=(
        "PromQL, LogQL, a Datadog metric or log query, or for CloudWatch a JSON object: metrics "
        '{"namespace", "metric", "dimensions": {"Service": "$service"}, "stat", "period"} or {"expression"}; '
        'logs {"log_groups": ["/ecs/$service"], "filter_pattern": "ERROR"}.'))
    services: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=200,
                                description='The services this signal covers; ["*"] covers every service.')
    unit: str = Field("", max_length=40)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        cleaned = sorted({v.strip() for v in value if v and v.strip()})
        if not cleaned:
            raise ValueError('give at least one service, or ["*"] for every service')
        if any(len(v) > 120 for v in cleaned):
            raise ValueError("a service name is at most 120 characters")
        return ["*"] if "*" in cleaned else cleaned

    @field_validator("query")
    @classmethod
    def _query(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("the query is empty")
        if isinstance(value, str) and len(value) > 10_000:
            raise ValueError("the query is longer than 10,000 characters")
        return value


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(..., min_length=1, max_length=200)
    provider: Provider
    endpoint: str = Field("", max_length=2000, description=" ".join(
        f"{part}." for part in _by_provider(lambda p: p.endpoint_help)))
    credentials: dict[str, str] | None = Field(None, description="Write-only. " + " ".join(
        f"{part}." for part in _by_provider(lambda p: p.credentials_help)))
    signals: list[SignalIn] = Field(default_factory=list, max_length=100)
    options: dict[str, Any] = Field(default_factory=dict, description="; ".join(
        [", ".join(COMMON_OPTIONS), *_by_provider(lambda p: p.options_help)]) + ".")
    enabled: bool = True


class ConnectionUpdate(BaseModel):
    """Fields to change. `credentials` replaces all stored credentials ({} removes them); omit it to keep them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    endpoint: str | None = Field(None, max_length=2000)
    credentials: dict[str, str] | None = None
    signals: list[SignalIn] | None = Field(None, max_length=100)
    options: dict[str, Any] | None = None
    enabled: bool | None = None


class SignalRead(BaseModel):
    name: str
    kind: Kind
    query: str | dict[str, Any]
    services: list[str]
    unit: str = ""


class ConnectionRead(BaseModel):
    id: int
    name: str
    provider: str
    endpoint: str
    has_credentials: bool
    credential_keys: list[str] = Field(description="Which credential fields are set (their values are never shown).")
    signals: list[SignalRead]
    options: dict[str, Any]
    enabled: bool
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_error: str | None
    created_at: datetime
    updated_at: datetime


class ConnectionTestResult(BaseModel):
    ok: bool
    message: str | None = None
    error: str | None = None
