"""Monitor API schemas: what a person may configure, and what the API shows of a monitor and its checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Method = Literal["GET", "HEAD", "POST"]
Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]
StatusCode = Annotated[int, Field(ge=100, le=599)]


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL needs a host")
    if any(c.isspace() for c in value):
        raise ValueError("the URL must not contain spaces")
    return value


def _statuses(value: list[int] | None) -> list[int] | None:
    return None if value is None else sorted(set(value))


def _blank_to_none(value: str | None) -> str | None:
    return value if value else None


class MonitorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(..., min_length=1, max_length=200)
    url: str = Field(..., min_length=1, max_length=2000, description="http:// or https:// URL to check.")
    method: Method = "GET"
    expected_statuses: list[StatusCode] = Field(
        default_factory=list, max_length=50, description="Status codes that count as up; empty means any 2xx or 3xx.")
    keyword: str | None = Field(None, max_length=500,
                                description="Text that must appear in the first 1 MB of the body (case-sensitive).")
    timeout_seconds: float = Field(10.0, ge=1, le=60,
                                   description="Give up on a check after this long; below the interval.")
    interval_seconds: int = Field(60, ge=10, le=86_400, description="Seconds between two checks (at least 10).")
    failure_threshold: int = Field(2, ge=1, le=20, description="Consecutive failed checks that open an incident.")
    recovery_threshold: int = Field(2, ge=1, le=20, description="Consecutive good checks that resolve it.")
    service: str | None = Field(None, max_length=120, description="The service the incident affects.")
    severity: Severity = "SEV-2"
    enabled: bool = True

    _check_url = field_validator("url")(_http_url)
    _check_statuses = field_validator("expected_statuses")(_statuses)
    _check_blank = field_validator("keyword", "service")(_blank_to_none)

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> MonitorCreate:
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError("timeout_seconds must be shorter than interval_seconds")
        return self


class MonitorUpdate(BaseModel):
    """Fields to change; the result must still be a valid monitor (checked against the stored values)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, min_length=1, max_length=2000)
    method: Method | None = None
    expected_statuses: list[StatusCode] | None = Field(None, max_length=50)
    keyword: str | None = Field(None, max_length=500)
    timeout_seconds: float | None = Field(None, ge=1, le=60)
    interval_seconds: int | None = Field(None, ge=10, le=86_400)
    failure_threshold: int | None = Field(None, ge=1, le=20)
    recovery_threshold: int | None = Field(None, ge=1, le=20)
    service: str | None = Field(None, max_length=120)
    severity: Severity | None = None
    enabled: bool | None = None

    _check_url = field_validator("url")(_http_url)
    _check_statuses = field_validator("expected_statuses")(_statuses)
    _check_blank = field_validator("keyword", "service")(_blank_to_none)


class MonitorRead(BaseModel):
    id: int
    name: str
    url: str
    method: Method
    expected_statuses: list[int]
    keyword: str | None
    timeout_seconds: float
    interval_seconds: int
    failure_threshold: int
    recovery_threshold: int
    service: str | None
    severity: Severity
    enabled: bool
    state: Literal["unknown", "up", "down"]
    consecutive_failures: int
    consecutive_successes: int
    first_failure_at: datetime | None
    incident_id: int | None
    last_checked_at: datetime | None
    last_ok: bool | None
    last_error: str | None
    next_check_at: datetime
    created_at: datetime
    updated_at: datetime


class CheckResultRead(BaseModel):
    id: int
    monitor_id: int
    checked_at: datetime
    ok: bool
    status_code: int | None
    latency_ms: int | None
    error_kind: str | None
    error: str | None
