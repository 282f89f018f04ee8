"""The clock seam: real UTC time in production, a settable twin in tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Read the real UTC time."""

    def now(self) -> datetime:
        """Return the current UTC time (aware, microseconds dropped)."""
        return datetime.now(UTC).replace(microsecond=0)


class FrozenClock:
    """A clock that only moves when told (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def set(self, value: datetime) -> None:
        """Move the clock to a given time."""
        with self._lock:
            self._now = value

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by a timedelta's keyword arguments."""
        with self._lock:
            self._now = self._now + timedelta(**delta)
            return self._now


def as_utc(value: datetime) -> datetime:
    """Return an aware UTC datetime (naive values from the database are UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Format a datetime as UTC ISO-8601 with a trailing Z (None stays None)."""
    if value is None:
        return None
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse ISO-8601 text (a trailing Z means UTC); the offset is kept, naive stays naive; raise ValueError."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def to_utc(value: object) -> datetime | None:
    """Return a datetime or ISO-8601 text as aware UTC (naive means UTC); None when empty or unparseable."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str) and value:
        try:
            return as_utc(parse_iso(value))
        except ValueError:
            return None
    return None


def stamp(value: datetime, *, seconds: bool = False) -> str:
    """Format a datetime for people, e.g. "2024-05-01 10:23 UTC" (with seconds when asked)."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def minutes_between(start: datetime, end: datetime) -> int:
    """Return whole minutes from start to end, rounded half up, never negative."""
    micros = (as_utc(end) - as_utc(start)) // timedelta(microseconds=1)
    return max(0, (micros + 30_000_000) // 60_000_000)


def require_aware(value: datetime) -> datetime:
    """Return an aware timestamp in range, else raise ValueError (for schema validators)."""
    if value.tzinfo is None:
        raise ValueError("timestamp needs a timezone (use Z for UTC)")
    return check_range(value)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def check_range(value: datetime) -> datetime:
    """Return an aware timestamp if it lies in 1970..9000, else raise ValueError (windows around it stay computable)."""
    # why: year 1 or 9999 with an offset cannot even be converted to UTC (OverflowError, a 500 in every page
    # and job that reads it), and no incident, deploy or alert happened before 1970
    if not EARLIEST <= value < LATEST:
        raise ValueError("timestamp out of range (1970-01-01 to 8999-12-31)")
    return value
