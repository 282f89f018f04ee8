"""The stored live summary of an incident."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base


class IncidentSummary(Base):
    """The latest live summary of an incident, rebuilt when new evidence arrives."""

    __tablename__ = "incident_summary"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | building | ready | failed
    content: Mapped[dict | None]  # {"what", "impact", "suspects", "tried", "citations": [...]}
    engine: Mapped[str | None] = mapped_column(String(200))
    evidence_version: Mapped[str | None] = mapped_column(String(64))  # hash of the evidence it was built from
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime]  # queued: when the refresh is due (later within the minimum interval); building: claimed
    generated_at: Mapped[datetime | None]
    observations: Mapped[dict | None]  # connector fetches cached for this incident (metrics, logs), reused until stale
    observed_at: Mapped[datetime | None]
