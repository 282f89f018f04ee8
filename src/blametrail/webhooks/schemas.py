"""Webhook API schemas: what an admin creates, and what the API shows (the secret only once)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from blametrail.webhooks.models import WEBHOOK_KINDS

Kind = Literal[WEBHOOK_KINDS]  # type: ignore[valid-type]  # why: WEBHOOK_KINDS is the one list of kinds
Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Kind
    name: str = Field(..., min_length=1, max_length=200)
    default_service: str | None = Field(None, min_length=1, max_length=120,
                                        description="Service for alerts whose labels name none.")
    default_severity: Severity = "SEV-3"
    environment: str | None = Field(None, min_length=1, max_length=64,
                                    description="Deploy webhooks: accept only this environment (none = any).")
    open_incidents: bool = Field(True, description="A firing alert with no open incident of its service opens one.")
    auto_resolve: bool = Field(False, description="Resolve the incident when all its alerts have resolved.")


class WebhookRead(BaseModel):
    id: int
    kind: str
    name: str
    url: str
    secret_prefix: str
    default_service: str | None
    default_severity: str
    environment: str | None
    open_incidents: bool
    auto_resolve: bool
    active: bool
    created_at: str
    disabled_at: str | None
    last_delivery_at: str | None = None


class WebhookWithSecret(WebhookRead):
    secret: str = Field(..., description="Shown only in this response; store it in the sender's configuration.")


class DeliveryRead(BaseModel):
    id: int
    delivery_key: str
    received_at: str
    event: str | None
    items: int
    summary: str
