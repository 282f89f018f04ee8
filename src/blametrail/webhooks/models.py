"""Inbound webhooks shared by alert and deploy sources: the receiver URL with its secret, and accepted deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base

WEBHOOK_KINDS = ("alertmanager", "grafana", "generic_alert", "github", "generic_deploy")


class Webhook(Base):
    """A receiver URL of one organization: /webhooks/<kind>/<uid>, authenticated by its own secret."""

    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    secret_encrypted: Mapped[str] = mapped_column(Text)  # Fernet; GitHub needs the secret itself to verify HMACs
    secret_prefix: Mapped[str] = mapped_column(String(16))
    default_service: Mapped[str | None] = mapped_column(String(120))
    default_severity: Mapped[str] = mapped_column(String(8), default="SEV-3")
    environment: Mapped[str | None] = mapped_column(String(64))  # deploy webhooks: only this environment (None = any)
    open_incidents: Mapped[bool] = mapped_column(default=True)  # firing alert with no open incident opens one
    auto_resolve: Mapped[bool] = mapped_column(default=False)  # resolve the incident when all its alerts resolve
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """An accepted delivery; its key (the sender's delivery id, else the body's SHA-256) makes replays no-ops."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("webhook_id", "delivery_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    delivery_key: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime]
    event: Mapped[str | None] = mapped_column(String(64))  # e.g. GitHub's X-GitHub-Event
    items: Mapped[int] = mapped_column(default=0)  # alerts or deploys it carried
    summary: Mapped[str] = mapped_column(Text, default="")


Index("ix_webhook_delivery_at", WebhookDelivery.webhook_id, WebhookDelivery.received_at)
