"""Scheduling lag: how many checks are overdue and by how much, per organization on the monitors page and for the
installation in /readyz; a check being run (leased) or due within a few seconds is not late."""

from __future__ import annotations

from datetime import timedelta

from blametrail import db
from blametrail.monitors import service as monitors
from blametrail.monitors.models import Monitor
from tests.monitors.test_service import make
from tests.web.test_pages import browser, soup, team, text  # noqa: F401 — fixtures


def _due(rt, monitor_id, seconds_ago, leased=False):
    with db.transaction(rt.factory) as s:
        m = s.get(Monitor, monitor_id)
        m.next_check_at = rt.clock.now() - timedelta(seconds=seconds_ago)
        if leased:
            m.lease_owner, m.lease_until = "other", rt.clock.now() + timedelta(seconds=30)


def test_lag_counts_waiting_checks_only(rt, factory):
    a = factory.member(factory.org(), "owner").actor
    b = factory.member(factory.org(), "owner").actor
    on_time, late, running, other = (make(rt, a, name="m1"), make(rt, a, name="m2"), make(rt, a, name="m3"),
                                     make(rt, b, name="m4"))
    _due(rt, on_time, 2)
    _due(rt, late, 95)
    _due(rt, running, 300, leased=True)
    _due(rt, other, 40)
    with db.transaction(rt.factory) as s:
        mine = monitors.schedule_lag(session=s, now=rt.clock.now(), org_id=a.org_id)
        everyone = monitors.schedule_lag(session=s, now=rt.clock.now())
    assert mine == {"overdue": 1, "lag_seconds": 95.0, "late": True}
    assert everyone["overdue"] == 2 and everyone["lag_seconds"] == 95.0


def test_the_monitors_page_says_checks_are_late(browser, team, rt):
    t = team()
    page = soup(browser(t["viewer"]).get("/settings/monitors"))
    assert page.select_one("#monitor-lag") is None
    m = make(rt, t["owner"].actor, name="slow")
    _due(rt, m, 200)
    page = soup(browser(t["viewer"]).get("/settings/monitors"))
    notice = text(page.select_one("#monitor-lag"))
    assert notice.startswith("1 check is late; the oldest has waited 3.3 minutes") and "blametrail scheduler" in notice
