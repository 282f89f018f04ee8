"""HTTP monitors, their check results and their up/down state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base


class Monitor(Base):
    __tablename__ = "monitor"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(8), default="GET")
    expected_statuses: Mapped[list] = mapped_column(default=list)  # e.g. [200, 204]; empty = any 2xx/3xx
    keyword: Mapped[str | None] = mapped_column(String(500))
    timeout_seconds: Mapped[float] = mapped_column(default=10.0)
    interval_seconds: Mapped[int] = mapped_column(default=60)
    failure_threshold: Mapped[int] = mapped_column(default=2)
    recovery_threshold: Mapped[int] = mapped_column(default=2)
    service: Mapped[str | None] = mapped_column(String(120))
    severity: Mapped[str] = mapped_column(String(8), default="SEV-2")
    enabled: Mapped[bool] = mapped_column(default=True)
    # scheduling: a lease in the database so several schedulers never run the same check twice
    next_check_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    # state
    state: Mapped[str] = mapped_column(String(16), default="unknown")  # unknown | up | down
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    consecutive_successes: Mapped[int] = mapped_column(default=0)
    first_failure_at: Mapped[datetime | None]  # first failed check of the current failure streak / outage
    outage_checks: Mapped[int] = mapped_column(default=0)  # checks since the outage began
    outage_failures: Mapped[int] = mapped_column(default=0)
    outage_error_kinds: Mapped[dict] = mapped_column(default=dict)  # error kind → count during the outage
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id", ondelete="SET NULL"))
    last_checked_at: Mapped[datetime | None]
    last_ok: Mapped[bool | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CheckResult(Base):
    __tablename__ = "check_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitor.id", ondelete="CASCADE"))
    checked_at: Mapped[datetime]
    ok: Mapped[bool]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error_kind: Mapped[str | None] = mapped_column(String(32))  # timeout | connect | dns | tls | status | keyword | other
    error: Mapped[str | None] = mapped_column(Text)


Index("ix_monitor_due", Monitor.enabled, Monitor.next_check_at)
Index("ix_check_result_monitor_at", CheckResult.monitor_id, CheckResult.checked_at)
