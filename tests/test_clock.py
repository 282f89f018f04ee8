"""The UTC/ISO/duration helpers of clock.py, and analysis's pure copy of them agreeing."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from blametrail import clock
from blametrail.analysis import times

EAST = timezone(timedelta(hours=2))


def test_iso_and_as_utc():
    assert clock.iso(datetime(2024, 5, 1, 12, 0, tzinfo=EAST)) == "2024-05-01T10:00:00Z"
    assert clock.iso(datetime(2024, 5, 1, 10, 0)) == "2024-05-01T10:00:00Z"
    assert clock.iso(None) is None


def test_to_utc_reads_datetimes_and_iso_text():
    assert clock.to_utc("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert clock.to_utc(" 2024-05-01T12:00:00+02:00 ") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert clock.to_utc(datetime(2024, 5, 1, 10)) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert clock.to_utc("yesterday") is None
    assert clock.to_utc("") is None and clock.to_utc(None) is None and clock.to_utc(3) is None


def test_stamp_and_minutes():
    at = datetime(2024, 5, 1, 10, 23, 45, tzinfo=UTC)
    assert clock.stamp(at) == "2024-05-01 10:23 UTC"
    assert clock.stamp(at, seconds=True) == "2024-05-01 10:23:45 UTC"
    assert clock.minutes_between(at, at + timedelta(seconds=89)) == 1
    assert clock.minutes_between(at, at + timedelta(seconds=90)) == 2
    assert clock.minutes_between(at, at - timedelta(minutes=5)) == 0


def test_require_aware():
    with pytest.raises(ValueError, match="timezone"):
        clock.require_aware(datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="range"):
        clock.require_aware(datetime(1960, 5, 1, tzinfo=UTC))
    assert clock.require_aware(datetime(2024, 5, 1, tzinfo=EAST)).tzinfo is EAST


@pytest.mark.parametrize("value", [datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 12, 30, 15, tzinfo=EAST),
                                   datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)])
def test_analysis_copy_agrees_with_clock(value):
    # why: analysis/ imports nothing of the project, so it keeps its own copy; this pins the two together
    later = value + timedelta(minutes=7, seconds=31)
    assert times.utc(value) == clock.as_utc(value)
    assert times.iso(value) == clock.iso(value)
    assert times.stamp(value) == clock.stamp(value)
    assert times.minutes_between(value, later) == clock.minutes_between(value, later)
