"""Deploy API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blametrail.clock import require_aware


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None else require_aware(value)


class CommitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sha: str = Field(..., min_length=4, max_length=64, pattern=r"^[0-9a-fA-F]+$")
    author: str | None = Field(None, max_length=320)
    message: str = Field("", max_length=20_000)
    files: list[str] = Field(default_factory=list, max_length=5_000)
    committed_at: datetime | None = None

    _check_at = field_validator("committed_at")(_aware)


class DeployCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service: str = Field(..., min_length=1, max_length=120)
    environment: str = Field("production", min_length=1, max_length=64)
    version: str = Field(..., min_length=1, max_length=200)
    deployed_at: datetime | None = None
    commits: list[CommitIn] = Field(default_factory=list, max_length=1_000)
    external_id: str | None = Field(
        None, min_length=1, max_length=200,
        description="The sender's id for this deploy (e.g. CI run or commit). Sending the same external_id again "
                    "records nothing new: the API answers 200 with the deploy already recorded.")
    url: str | None = Field(None, max_length=2000, description="Where to read about the deploy (CI job, release).")
    source: Literal["api", "cli"] = Field(
        "api", description="Who sent it: api (default) or cli (`blametrail deploy record`); external ids are "
                           "unique per source.")

    _check_at = field_validator("deployed_at")(_aware)


class CommitRead(BaseModel):
    evidence_id: str
    sha: str
    author: str | None
    message: str
    files: list[str]
    committed_at: datetime | None


class DeployRead(BaseModel):
    id: int
    evidence_id: str
    service: str
    environment: str
    version: str
    deployed_at: datetime
    created_at: datetime
    source: str
    external_id: str | None
    url: str | None
    commits: list[CommitRead]
