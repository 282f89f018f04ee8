"""Input and output shapes of action items (API and pages)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Status = Literal["open", "in_progress", "done", "wont_do"]
Priority = Literal["high", "medium", "low"]
OWNER_MAX = 320
TITLE_MAX = 1000


def _clean_title(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("a title is required")
    return value


def _clean_owner(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class ActionItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    priority: Priority = "medium"
    owner: str | None = Field(default=None, max_length=OWNER_MAX)
    due_date: date | None = None
    description: str = Field(default="", max_length=10_000)

    _title = field_validator("title")(_clean_title)
    _owner = field_validator("owner")(_clean_owner)


class ActionItemUpdate(BaseModel):
    """A PATCH: only the fields sent change; owner and due_date may be set to null; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    owner: str | None = Field(default=None, max_length=OWNER_MAX)
    due_date: date | None = None
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    priority: Priority | None = None

    _owner = field_validator("owner")(_clean_owner)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else _clean_title(value)

    @field_validator("status", "priority", "title")
    @classmethod
    def _not_null(cls, value, info):
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null")
        return value


class DuplicateRef(BaseModel):
    id: int
    incident_id: int
    status: str
    title: str


class ActionItemRead(BaseModel):
    id: int
    incident_id: int
    title: str
    description: str
    priority: str
    owner: str | None
    due_date: date | None
    status: str
    overdue: bool
    kind: str | None
    evidence: list
    service: str | None
    source: str
    duplicate_of: DuplicateRef | None
    external: dict | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class ActionItemList(BaseModel):
    items: list[ActionItemRead]
