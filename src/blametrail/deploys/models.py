"""Deploys of services and the commits they shipped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from blametrail.db import Base


class Deploy(Base):
    __tablename__ = "deploy"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(120))
    environment: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(200))
    deployed_at: Mapped[datetime]
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | cli | github | webhook
    external_id: Mapped[str | None] = mapped_column(String(200))  # the sender's id: a replay records nothing new
    url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime]

    commits: Mapped[list[Commit]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Commit.id"
    )


class Commit(Base):
    __tablename__ = "deploy_commit"

    id: Mapped[int] = mapped_column(primary_key=True)
    deploy_id: Mapped[int] = mapped_column(ForeignKey("deploy.id", ondelete="CASCADE"), index=True)
    sha: Mapped[str] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(String(320))
    message: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[list] = mapped_column(default=list)
    committed_at: Mapped[datetime | None]


Index("ix_deploy_org_service_at", Deploy.org_id, Deploy.service, Deploy.deployed_at)
Index("uq_deploy_external", Deploy.org_id, Deploy.source, Deploy.external_id, unique=True)
