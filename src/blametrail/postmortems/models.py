"""Postmortems, their revisions (nothing is ever lost) and generation runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base


class Postmortem(Base):
    __tablename__ = "postmortem"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=1)
    engine: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    sections: Mapped[dict | None]
    original_sections: Mapped[dict | None]  # the last AI draft, untouched by people
    edited_keys: Mapped[list] = mapped_column(default=list)  # sections a person has changed since the last draft
    overwrite_edited: Mapped[bool] = mapped_column(default=False)  # asked for by the pending regeneration
    attempt: Mapped[int] = mapped_column(default=0)  # bumps at every claim; fences out dead workers
    generation_requested_at: Mapped[datetime]  # start of the last generation (rate limit anchor)
    queued_at: Mapped[datetime | None]  # when it was last put on the queue (the sweep re-enqueues old ones)
    claimed_at: Mapped[datetime | None]  # when a worker started the current generation
    heartbeat_at: Mapped[datetime | None]  # refreshed by the worker while it generates; the sweep re-queues silent ones
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    generated_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    published_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    published_by: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime]


class Revision(Base):
    """An immutable snapshot of a postmortem's sections: kind ai, edit or publish."""

    __tablename__ = "postmortem_revision"
    __table_args__ = (UniqueConstraint("postmortem_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    postmortem_id: Mapped[int] = mapped_column(ForeignKey("postmortem.id", ondelete="CASCADE"))
    number: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    sections: Mapped[dict]
    engine: Mapped[str | None] = mapped_column(String(200))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    version: Mapped[int | None]  # the postmortem's version once this revision was stored (None on rows before 0009)


class GenerationRun(Base):
    """One attempt to draft a postmortem: engine, times, outcome and the evidence it used."""

    __tablename__ = "generation_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    postmortem_id: Mapped[int] = mapped_column(ForeignKey("postmortem.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int]
    engine: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | fallback | failed | abandoned
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    step: Mapped[str | None] = mapped_column(String(32))  # gathering | asking_model | grounding | storing (progress)
    step_at: Mapped[datetime | None]  # when the current step began
    # audit of model calls (LLM engines): what was sent, what came back, what it cost
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    prompt: Mapped[dict | None]  # {"system": …, "user": …, "budget": …, "included": …, "cut": …}
    response_raw: Mapped[str | None] = mapped_column(Text)
    tokens_in: Mapped[int | None]
    tokens_out: Mapped[int | None]
    model_latency_ms: Mapped[int | None]


class Comment(Base):
    """A comment on one section of a postmortem (or a reply to one); resolved comments stay, marked."""

    __tablename__ = "postmortem_comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    postmortem_id: Mapped[int] = mapped_column(ForeignKey("postmortem.id", ondelete="CASCADE"), index=True)
    section: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("postmortem_comment.id", ondelete="CASCADE"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(320))
    resolved: Mapped[bool] = mapped_column(default=False)
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReviewRequest(Base):
    """A named member asked to review a postmortem: pending until they approve (at a version) or ask for changes."""

    __tablename__ = "postmortem_review"
    __table_args__ = (UniqueConstraint("postmortem_id", "reviewer_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    postmortem_id: Mapped[int] = mapped_column(ForeignKey("postmortem.id", ondelete="CASCADE"), index=True)
    reviewer_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(24), default="pending")  # pending | approved | changes_requested
    approved_version: Mapped[int | None]  # the postmortem version the approval was given on
    note: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(320))
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class CustomerVersion(Base):
    """The customer-facing text of a published postmortem: shorter, with internal names redacted, served at an
    unguessable public URL once made public (and only while the organization allows public postmortems)."""

    __tablename__ = "customer_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), unique=True)
    public_token: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[dict]  # {impact, what_happened, what_we_are_changing}
    removed: Mapped[list] = mapped_column(default=list)  # what redaction took out: [{section, text, reason}]
    source_version: Mapped[int]  # the published version it was made from
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | public | withdrawn
    published_at: Mapped[datetime | None]
    updated_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


Index("ix_postmortem_status", Postmortem.status)
