"""Vendor integrations: their per-organization configuration, the events already received, and the links between
records of ours (incidents, updates, action items, published postmortems) and the vendor's (incidents, messages,
issues, pages)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base

KINDS = ("slack", "pagerduty", "opsgenie", "jira", "linear", "github_issues", "confluence", "notion")


class VendorIntegration(Base):
    """One organization's configuration of one vendor: settings in clear, secrets sealed, an unguessable inbound id."""

    __tablename__ = "vendor_integration"
    __table_args__ = (UniqueConstraint("org_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict] = mapped_column(default=dict)  # channel, project key, base_url … (never a secret)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)  # Fernet of a JSON object; write-only through the API
    inbound_uid: Mapped[str] = mapped_column(String(64), unique=True)  # names the org in the inbound URLs
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # unknown | ok | error
    last_error: Mapped[str | None] = mapped_column(Text)  # plain words: "Slack rejected the bot token (invalid_auth)"
    last_checked_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class VendorEvent(Base):
    """An inbound event already handled (Slack retries, PagerDuty/Opsgenie/Jira/Linear/GitHub deliveries): replays
    are acknowledged and ignored. The sweep purges old rows."""

    __tablename__ = "vendor_event"
    __table_args__ = (UniqueConstraint("org_id", "kind", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(index=True)


class ExternalLink(Base):
    """A record of the vendor's tied to one of ours, found again by the vendor's id.

    kind: pagerduty_incident | opsgenie_alert | slack_channel | slack_message | jira_issue | linear_issue |
    github_issue | confluence_page | notion_page. `data` keeps what the link needs (url, version, status, edited).
    """

    __tablename__ = "external_link"
    __table_args__ = (UniqueConstraint("org_id", "kind", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    action_item_id: Mapped[int | None] = mapped_column(ForeignKey("action_item.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("timeline_entry.id", ondelete="SET NULL"))
    data: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
