"""Outbound webhook endpoints and their delivery log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base

EVENTS = ("incident.opened", "incident.resolved", "postmortem.drafted", "postmortem.edited", "postmortem.published",
          "action_item.changed")


class OutboundEndpoint(Base):
    """A URL an organization wants events sent to, with its signing secret (sealed) and the events it wants."""

    __tablename__ = "outbound_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list] = mapped_column(default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)  # Fernet of "whsec_<base64>"
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)  # set when sustained failure turned it off
    failure_streak: Mapped[int] = mapped_column(default=0)
    first_failure_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OutboundDelivery(Base):
    """One message to one endpoint: retried with back-off until it succeeds or gives up; redeliverable by hand."""

    __tablename__ = "outbound_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("outbound_endpoint.id", ondelete="CASCADE"), index=True)
    msg_id: Mapped[str] = mapped_column(String(64))  # the webhook-id header: the same on every retry
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


Index("ix_outbound_delivery_due", OutboundDelivery.status, OutboundDelivery.next_attempt_at)
