"""Observability connections: a provider, its endpoint, encrypted credentials and per-service signals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base


class Connection(Base):
    __tablename__ = "connection"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(2000), default="")  # base URL, Datadog site, or AWS region
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)  # Fernet of a JSON object; never returned
    signals: Mapped[list] = mapped_column(default=list)  # [{"name","kind":"metric"|"log","query","services":[..]|["*"]}]
    options: Mapped[dict] = mapped_column(default=dict)  # provider knobs: step, timeouts, caps
    enabled: Mapped[bool] = mapped_column(default=True)
    last_test_at: Mapped[datetime | None]
    last_test_ok: Mapped[bool | None]
    last_test_error: Mapped[str | None] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
