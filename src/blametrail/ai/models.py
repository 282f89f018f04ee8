"""Per-organization AI settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base


class AIConfig(Base):
    """An organization's own model settings, overriding the installation's (API key encrypted at rest)."""

    __tablename__ = "ai_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), unique=True)
    engine: Mapped[str] = mapped_column(String(32))  # builtin | openai | anthropic
    model: Mapped[str | None] = mapped_column(String(200))
    base_url: Mapped[str | None] = mapped_column(String(2000))
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    output_mode: Mapped[str | None] = mapped_column(String(16))  # tool | native | prompted
    options: Mapped[dict] = mapped_column(default=dict)  # timeouts, token caps, azure api_version…
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
