"""The monitor state machine and its timeline data, as plain functions (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blametrail.monitors.service import MonitorState, Outage, down_data, step, up_data

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def run(results: list[str], *, fail_at: int = 2, recover_at: int = 2, state: MonitorState | None = None):
    """Feed results ('ok' or an error kind) one minute apart; return the final state and the events seen."""
    state = state or MonitorState()
    events = []
    for i, r in enumerate(results):
        ok = r == "ok"
        t = step(state, ok=ok, error_kind=None if ok else r, checked_at=T0 + i * MIN, failure_threshold=fail_at,
                 recovery_threshold=recover_at)
        if t.event:
            events.append((i, t.event, t.outage, t.recovered_at))
        state = t.state
    return state, events


def test_first_success_makes_an_unknown_monitor_up():
    state, events = run(["ok"])
    assert state.state == "up" and events == []


def test_failures_below_threshold_change_nothing_visible():
    state, events = run(["ok", "status"], fail_at=2)
    assert state.state == "up" and state.consecutive_failures == 1 and state.first_failure_at == T0 + MIN
    assert events == []


def test_threshold_exactly_reached_goes_down_once():
    state, events = run(["ok", "status", "timeout"], fail_at=2)
    assert state.state == "down"
    assert len(events) == 1
    i, event, outage, _ = events[0]
    assert (i, event) == (2, "down")
    assert outage == Outage(first_failure_at=T0 + MIN, failed_checks=2, total_checks=2,
                            error_kinds={"status": 1, "timeout": 1})


def test_staying_down_adds_no_events_but_counts():
    state, events = run(["status", "status", "status", "connect", "status"], fail_at=2)
    assert [e[1] for e in events] == ["down"]
    assert (state.outage_checks, state.outage_failures) == (5, 5)
    assert dict(state.outage_error_kinds) == {"status": 4, "connect": 1}
    assert state.first_failure_at == T0


def test_threshold_of_one_goes_down_on_the_first_failure():
    state, events = run(["ok", "dns"], fail_at=1)
    assert state.state == "down" and events[0][0] == 1 and events[0][2].first_failure_at == T0 + MIN


def test_flapping_before_the_threshold_resets_the_streak():
    state, events = run(["status", "ok", "status", "ok", "status"], fail_at=2)
    assert events == [] and state.state == "up"
    assert state.consecutive_failures == 1 and state.first_failure_at == T0 + 4 * MIN
    assert (state.outage_checks, state.outage_failures, dict(state.outage_error_kinds)) == (1, 1, {"status": 1})


def test_recovery_at_threshold_reports_the_first_good_check():
    results = ["status", "status", "status", "ok", "ok"]  # down at 1, first good at 3, confirmed at 4
    state, events = run(results, fail_at=2, recover_at=2)
    assert [e[1] for e in events] == ["down", "up"]
    _, _, outage, recovered_at = events[1]
    assert recovered_at == T0 + 3 * MIN
    assert outage == Outage(first_failure_at=T0, failed_checks=3, total_checks=5, error_kinds={"status": 3})
    assert outage.failure_share == 0.6
    assert state == MonitorState(state="up")  # everything about the outage is forgotten


def test_recovery_streak_broken_by_a_failure_starts_again():
    results = ["status", "status", "ok", "timeout", "ok", "ok"]
    _, events = run(results, fail_at=2, recover_at=2)
    assert [e[1] for e in events] == ["down", "up"]
    _, _, outage, recovered_at = events[1]
    assert recovered_at == T0 + 4 * MIN  # not the isolated good check at minute 2
    assert outage.failed_checks == 3 and outage.total_checks == 6
    assert dict(outage.error_kinds) == {"status": 2, "timeout": 1}


def test_recovery_partial_streak_keeps_its_start():
    state, events = run(["status", "status", "ok", "ok"], fail_at=2, recover_at=3)
    assert state.state == "down" and state.consecutive_successes == 2
    assert state.recovery_started_at == T0 + 2 * MIN and [e[1] for e in events] == ["down"]


def test_recovery_threshold_of_one():
    _, events = run(["status", "status", "ok"], fail_at=2, recover_at=1)
    assert events[-1][1] == "up" and events[-1][3] == T0 + 2 * MIN


def test_state_resumes_from_stored_values():
    stored = MonitorState(state="down", consecutive_successes=1, first_failure_at=T0, recovery_started_at=T0 + 5 * MIN,
                          outage_checks=6, outage_failures=5, outage_error_kinds={"connect": 5})
    t = step(stored, ok=True, error_kind=None, checked_at=T0 + 6 * MIN, failure_threshold=2, recovery_threshold=2)
    assert t.event == "up" and t.recovered_at == T0 + 5 * MIN
    assert t.outage == Outage(T0, 5, 7, {"connect": 5})


def test_a_new_outage_starts_fresh_after_recovery():
    _, events = run(["status", "status", "ok", "ok", "ok", "timeout", "timeout"], fail_at=2, recover_at=2)
    assert [e[1] for e in events] == ["down", "up", "down"]
    assert events[2][2] == Outage(T0 + 5 * MIN, 2, 2, {"timeout": 2})


def test_down_and_up_data_follow_the_contract():
    outage = Outage(first_failure_at=T0, failed_checks=3, total_checks=4, error_kinds={"timeout": 1, "status": 2})
    down = down_data(monitor_id=7, name="checkout", url="https://x.test/h", outage=outage, last_error="boom")
    assert down == {"monitor_id": 7, "monitor": "checkout", "url": "https://x.test/h", "state": "down",
                    "first_failure_at": "2026-11-26T10:00:00Z", "failed_checks": 3, "total_checks": 4,
                    "error_kinds": {"status": 2, "timeout": 1}, "last_error": "boom"}
    up = up_data(monitor_id=7, name="checkout", outage=outage, recovered_at=T0 + 3 * MIN)
    assert up == {"state": "up", "monitor_id": 7, "monitor": "checkout", "first_failure_at": "2026-11-26T10:00:00Z",
                  "recovered_at": "2026-11-26T10:03:00Z", "failed_checks": 3, "total_checks": 4,
                  "failure_share": 0.75, "error_kinds": {"status": 2, "timeout": 1}}
