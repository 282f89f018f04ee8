"""Action items: one row per follow-up a team tracks, tied to the incident it came from."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base

STATUSES = ("open", "in_progress", "done", "wont_do")
PRIORITIES = ("high", "medium", "low")


class ActionItem(Base):
    """A tracked follow-up: title, priority, owner (a member's email or a team's name), due date and status.

    `source_key` identifies the draft action item it was made from (so publishing twice makes it once);
    `external` is the seam for issue trackers: {tracker, key, url, status, synced_at} once linked.
    """

    __tablename__ = "action_item"
    __table_args__ = (UniqueConstraint("org_id", "incident_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    owner: Mapped[str | None] = mapped_column(String(320))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")
    kind: Mapped[str | None] = mapped_column(String(16))  # detect | mitigate | prevent, from the draft
    evidence: Mapped[list] = mapped_column(default=list)
    service: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | draft
    source_key: Mapped[str | None] = mapped_column(String(64))
    # the open item of another incident this one repeats (a draft proposed linking it instead of a duplicate)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("action_item.id", ondelete="SET NULL"))
    external: Mapped[dict | None]
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


Index("ix_action_item_org_status", ActionItem.org_id, ActionItem.status)
