"""Organizations, users, memberships, invitations, API tokens, login sessions, monthly usage, login throttling, idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from blametrail.db import Base

PLANS = ("free", "starter", "pro")
PLAN_LIMITS: dict[str, int] = {"free": 0, "starter": 5, "pro": 50}
ROLES = ("owner", "admin", "member", "viewer")


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(16), default="starter")
    ai_enabled: Mapped[bool] = mapped_column(default=True)
    # off: no review panel; optional: reviews can be requested; required: publishing needs an approval of the text
    review_mode: Mapped[str] = mapped_column(String(16), default="off", server_default="off")
    # customer-facing postmortems may be served at their public URLs (owner's choice; off by default)
    public_postmortems: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[datetime]
    # why: sign-in lands in the organization used last; no foreign key, a deleted org just falls back to the first
    last_org_id: Mapped[int | None] = mapped_column(nullable=True)

    @property
    def display_name(self) -> str:
        return self.name or self.email


class Membership(Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]

    org: Mapped[Organization] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")


class Invitation(Base):
    """A pending invitation of an email address to an organization; accepting it creates the membership."""

    __tablename__ = "invitation"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    org: Mapped[Organization] = relationship(lazy="joined")


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginSession(Base):
    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class MonthlyUsage(Base):
    """Postmortems created per organization and UTC calendar month (the quota counter)."""

    __tablename__ = "monthly_usage"
    __table_args__ = (UniqueConstraint("org_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))  # "YYYY-MM"
    used: Mapped[int] = mapped_column(default=0)


class SetupToken(Base):
    """A one-time token printed by `serve` on an empty database to create the first owner."""

    __tablename__ = "setup_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed-login state of one subject (a hashed email or a client address); the row also serializes its updates."""

    __tablename__ = "login_throttle"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(80), unique=True)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(index=True)


class LoginAttempt(Base):
    """One admitted login attempt not (yet) known to have succeeded; counted in the sliding window."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    throttle_id: Mapped[int] = mapped_column(ForeignKey("login_throttle.id", ondelete="CASCADE"))
    at: Mapped[datetime]


class IdempotencyRecord(Base):
    """An API POST made with an Idempotency-Key: reserved with the request's transaction, then its response."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("org_id", "token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    token_id: Mapped[int] = mapped_column(ForeignKey("api_token.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(2048))
    request_sha256: Mapped[str] = mapped_column(String(64))
    claim: Mapped[str] = mapped_column(String(32))  # random per reservation: only its own request stores the response
    status: Mapped[str] = mapped_column(String(16))  # processing | done
    response_status: Mapped[int | None]
    response_headers: Mapped[dict | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(index=True)


Index("ix_login_session_expires", LoginSession.expires_at)
Index("ix_login_attempt_throttle_at", LoginAttempt.throttle_id, LoginAttempt.at)


class OrgTemplate(Base):
    """An organization's postmortem template: default owners per service, severity definitions, section instructions.

    `content` is validated by its service before it is stored; one row per organization, absent until first saved.
    """

    __tablename__ = "org_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), unique=True)
    content: Mapped[dict] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(320))
