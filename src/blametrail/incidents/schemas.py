"""Incident API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blametrail.clock import require_aware

Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None else require_aware(value)


def _services(value: list[str]) -> list[str]:
    cleaned = sorted({s.strip() for s in value if s and s.strip()})
    for s in cleaned:
        if len(s) > 120:
            raise ValueError("service names are at most 120 characters")
    return cleaned


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(..., min_length=1, max_length=300)
    severity: Severity | None = None
    services: list[str] = Field(default_factory=list, max_length=50)
    started_at: datetime | None = None
    description: str = Field("", max_length=20_000)

    _check_at = field_validator("started_at")(_aware)
    _check_services = field_validator("services")(_services)


class UpdateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    body: str = Field(..., min_length=1, max_length=20_000)
    at: datetime | None = None

    _check_at = field_validator("at")(_aware)


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolved_at: datetime | None = None

    _check_at = field_validator("resolved_at")(_aware)


class IncidentRead(BaseModel):
    id: int
    title: str
    description: str
    severity: Severity | None
    status: Literal["open", "resolved"]
    services: list[str]
    started_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    created_at: datetime
    updated_at: datetime
    duration_minutes: int | None
    postmortem_status: str | None = None
    postmortem_skip_reason: str | None = None


class IncidentPage(BaseModel):
    items: list[IncidentRead]
    next_cursor: str | None


class UpdateRead(BaseModel):
    id: int
    evidence_id: str
    incident_id: int
    at: datetime
    body: str
    author: str | None
    created_at: datetime


class TimelineItemRead(BaseModel):
    evidence_id: str
    at: datetime
    source: Literal["update", "status", "deploy", "monitor", "alert"]
    description: str
    author: str | None = None
    data: dict = Field(default_factory=dict)
