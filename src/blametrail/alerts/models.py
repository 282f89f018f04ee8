"""Alerts: one row per alert instance a webhook delivered (the webhook itself lives in blametrail.webhooks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base


class Alert(Base):
    """One alert instance (fingerprint + start), firing or resolved."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("webhook_id", "fingerprint", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    name: Mapped[str] = mapped_column(String(300))
    service: Mapped[str | None] = mapped_column(String(120))
    severity: Mapped[str | None] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict] = mapped_column(default=dict)
    annotations: Mapped[dict] = mapped_column(default=dict)
    generator_url: Mapped[str | None] = mapped_column(String(2000))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


Index("ix_alert_webhook_fp", Alert.webhook_id, Alert.fingerprint)
