"""Incidents, their affected services and their timeline entries (status changes and human updates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from blametrail.analysis import ids
from blametrail.db import Base

STATUSES = ("open", "resolved")


class Incident(Base):
    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open")
    started_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]  # first acknowledgement (PagerDuty, Opsgenie, or a person)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))
    mitigated_at: Mapped[datetime | None]  # impact ended (may be before the incident is resolved)
    resolved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    resolved_by: Mapped[str | None] = mapped_column(String(320))  # display label: a person or "monitor:<name>"
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    postmortem_skip_reason: Mapped[str | None] = mapped_column(Text)  # why auto-trigger queued nothing
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | monitor | alert
    source_ref: Mapped[str | None] = mapped_column(String(200))  # e.g. "monitor:3", "webhook:7"
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    services: Mapped[list[IncidentService]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="IncidentService.service"
    )

    @property
    def service_names(self) -> list[str]:
        return [s.service for s in self.services]


class IncidentService(Base):
    __tablename__ = "incident_service"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    service: Mapped[str] = mapped_column(String(120), primary_key=True)


class TimelineEntry(Base):
    """One row of an incident's own timeline: kind update (a person's words), status, monitor or alert."""

    __tablename__ = "timeline_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(16))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(String(320))
    data: Mapped[dict | None]  # structured evidence (monitor error kinds and counts, alert labels…)
    created_at: Mapped[datetime]


def evidence_id(entry: TimelineEntry) -> str:
    """Return the evidence id that cites this timeline entry."""
    return ids.entry_id(entry.kind, entry.id)


Index("ix_timeline_entry_incident_at", TimelineEntry.incident_id, TimelineEntry.at)
Index("ix_incident_org_started", Incident.org_id, Incident.started_at)
Index("ix_incident_service_service", IncidentService.service)
