"""UTC conversion, ISO and prose stamps, and minute counts for the pure analysis core."""

# why: analysis/ imports nothing of the project (import-linter pins it), so it keeps these few lines instead of
# importing clock.py; tests/test_clock.py checks both give the same answers.

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc(value: datetime) -> datetime:
    """Return the datetime as aware UTC (naive values are taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Format a datetime as UTC ISO-8601 with a trailing Z (None stays None)."""
    if value is None:
        return None
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(value: datetime) -> str:
    """Format a datetime for prose, e.g. "2024-05-01 10:23 UTC"."""
    return utc(value).strftime("%Y-%m-%d %H:%M UTC")


def minutes_between(start: datetime, end: datetime) -> int:
    """Return whole minutes from start to end, rounded half up, never negative."""
    micros = (utc(end) - utc(start)) // timedelta(microseconds=1)
    return max(0, (micros + 30_000_000) // 60_000_000)
