"""Analytics: counts, timings (median and p90) by service, severity and month, recurring causes and services,
action items, draft quality; JSON, CSV and the page with accessible SVG charts and tables; one organization."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from blametrail import db
from blametrail.incidents.models import Incident
from tests.web.test_pages import browser, soup, team, text  # noqa: F401 — fixtures

API = "/api/v1/analytics"


def _incident(client, rt, who, title, services, severity, started, *, ack=None, mitigate=None, resolve=None,
              opened_late=0):
    r = client.post("/api/v1/incidents", json={"title": title, "services": services, "severity": severity,
                                               "started_at": started.isoformat()}, headers=who.headers)
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    with db.transaction(rt.factory) as s:
        row = s.get(Incident, iid)
        row.created_at = started + timedelta(minutes=opened_late)
        row.acknowledged_at = started + timedelta(minutes=ack) if ack is not None else None
        row.mitigated_at = started + timedelta(minutes=mitigate) if mitigate is not None else None
        if resolve is not None:
            row.resolved_at, row.status = started + timedelta(minutes=resolve), "resolved"
    return iid


@pytest.fixture
def history(client, rt, factory, clock):
    owner = factory.member(factory.org(plan="pro"), "owner")
    now = clock.now()
    day = timedelta(days=1)
    # checkout: resolve 30, 60, 90 → median 60; payments: 10; one unresolved
    _incident(client, rt, owner, "a", ["checkout"], "SEV-1", now - 40 * day, ack=2, mitigate=20, resolve=30,
              opened_late=5)
    _incident(client, rt, owner, "b", ["checkout"], "SEV-2", now - 35 * day, ack=4, mitigate=40, resolve=60)
    _incident(client, rt, owner, "c", ["checkout", "payments"], "SEV-2", now - 5 * day, ack=6, resolve=90)
    _incident(client, rt, owner, "d", ["payments"], "SEV-3", now - 4 * day, resolve=10)
    _incident(client, rt, owner, "e", ["search"], None, now - 2 * day)
    _incident(client, rt, owner, "old", ["checkout"], "SEV-1", now - 400 * day, resolve=5)  # outside the year
    return owner


def test_timings_by_service_severity_and_month(client, history, clock):
    data = client.get(API, headers=history.headers).json()
    assert data["incidents"]["total"] == 5 and data["group_by"] == "service"
    groups = {g["key"]: g for g in data["timings"]["groups"]}
    assert list(groups)[:2] == ["checkout", "payments"]  # most incidents first
    assert groups["checkout"]["resolve"] == {"count": 3, "median": 60.0, "p90": 84.0}
    assert groups["checkout"]["acknowledge"]["median"] == 4.0
    assert groups["checkout"]["detect"] == {"count": 3, "median": 0.0, "p90": 4.0}
    assert groups["payments"]["resolve"]["median"] == 50.0
    assert groups["search"]["resolve"] == {"count": 0, "median": None, "p90": None}
    assert data["timings"]["overall"]["mitigate"]["median"] == 30.0

    by_sev = client.get(API, params={"group_by": "severity"}, headers=history.headers).json()
    assert [g["key"] for g in by_sev["timings"]["groups"]] == ["SEV-1", "SEV-2", "SEV-3", "unrated"]
    by_month = client.get(API, params={"group_by": "month"}, headers=history.headers).json()
    months = [m["month"] for m in by_month["incidents"]["by_month"]]
    assert len(months) in (12, 13) and sum(m["count"] for m in by_month["incidents"]["by_month"]) == 5
    recurring = data["recurring"]["services"]
    assert recurring[0] == {"service": "checkout", "count": 3} and {"service": "search", "count": 1} not in recurring

    since = (clock.now() - timedelta(days=10)).date().isoformat()
    recent = client.get(API, params={"from": since}, headers=history.headers).json()
    assert recent["incidents"]["total"] == 3


def test_csv_download_has_every_group_and_no_formula(client, rt, factory, clock):
    owner = factory.member(factory.org(plan="pro"), "owner")
    _incident(client, rt, owner, "x", ["=cmd|calc"], "SEV-2", clock.now() - timedelta(days=1), resolve=15)
    r = client.get(API + ".csv", headers=owner.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="blametrail-analytics-service-')
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["group", "incidents", "detect_median_minutes", "detect_p90_minutes"]
    assert rows[1][0] == "'=cmd|calc" and rows[-1][0] == "all" and rows[-1][-2] == "15.0"


def test_action_items_and_draft_quality(client, rt, factory, clock):
    owner = factory.member(factory.org(plan="pro"), "owner")
    iid = client.post("/api/v1/incidents", json={"title": "Queue stalled", "services": ["jobs"]},
                      headers=owner.headers).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "Root cause: the consumer deadlocked."},
                headers=owner.headers)
    clock.advance(minutes=30)
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=owner.headers)
    url = f"/api/v1/incidents/{iid}/postmortem"
    pm = client.get(url, headers=owner.headers).json()
    edit = client.patch(url, json={"version": pm["version"], "sections": {"summary": "Rewritten entirely by us."}},
                        headers=owner.headers)
    assert edit.status_code == 200, edit.text
    clock.advance(hours=2)
    assert client.post(url + "/publish", headers=owner.headers).status_code == 200
    items = client.get("/api/v1/action-items", params={"incident_id": iid}, headers=owner.headers).json()["items"]
    extra = client.post(f"/api/v1/incidents/{iid}/action-items", headers=owner.headers, json={
        "title": "Page on consumer lag", "priority": "high", "due_date": (clock.now() - timedelta(days=1)).date()
        .isoformat()}).json()
    client.patch(f"/api/v1/action-items/{items[0]['id']}", json={"status": "done"}, headers=owner.headers)

    data = client.get(API, headers=owner.headers).json()
    a = data["action_items"]
    assert a["total"] == len(items) + 1 and a["by_status"]["done"] == 1 and a["overdue"] == 1
    assert a["completion"] == round(1 / a["total"], 3) and extra["status"] == "open"
    d = data["draft_quality"]
    assert d["postmortems"] == 1 and d["hours_to_publish"]["median"] == 2.0
    kept = {s["section"]: s["kept"] for s in d["survival"]}
    assert kept["summary"] < 0.5 and kept["root_cause"] == 1.0  # rewritten vs untouched
    assert d["fallback_share"] == 0.0 and d["regenerations"] == 0


@pytest.mark.parametrize("params", [{"group_by": "team"}, {"from": "soon"}, {"from": "2026-10-05", "to": "2026-10-01"},
                                    {"from": "2020-01-01", "to": "2026-01-01"}])
def test_bad_parameters_are_422(client, factory, params):
    viewer = factory.member(factory.org(plan="pro"), "viewer")
    for path in (API, API + ".csv"):
        r = client.get(path, params=params, headers=viewer.headers)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text


def test_other_organizations_are_not_counted(client, rt, factory, clock, history):
    other = factory.member(factory.org(plan="pro"), "viewer")
    assert client.get(API, headers=other.headers).json()["incidents"]["total"] == 0


def test_the_page_draws_accessible_charts_with_tables(browser, team, client, rt, clock):
    t = team()
    _incident(client, rt, t["owner"], "a", ["checkout"], "SEV-1", clock.now() - timedelta(days=3), ack=3, resolve=30)
    _incident(client, rt, t["owner"], "b", ["checkout"], "SEV-2", clock.now() - timedelta(days=2), ack=5, resolve=50)
    c = browser(t["viewer"])
    page = soup(c.get("/analytics"))
    assert page.select_one("nav.main-nav a[aria-current=page]")["href"] == "/analytics"
    charts = page.select("figure.analytics-chart > svg")
    assert len(charts) >= 8
    for svg in charts:
        assert svg["role"] == "img" and svg.select_one("title") and svg.select_one("desc")
        ids = svg["aria-labelledby"].split()
        assert all(page.find(id=i) for i in ids)
    row = page.select_one("#table-timings tbody tr")
    assert text(row.select_one("th")) == "checkout" and "40.0" in text(row)  # median of 30 and 50
    assert page.select_one("#analytics-csv")["href"].startswith("/analytics.csv")
    assert c.get(page.select_one("#analytics-csv")["href"]).headers["content-type"].startswith("text/csv")
    bad = c.get("/analytics", params={"group_by": "team"})
    assert bad.status_code == 422 and "group_by must be one of" in text(soup(bad).select_one("#analytics-errors"))
    month = soup(c.get("/analytics", params={"group_by": "month"}))
    assert text(month.select_one("#h-timings")) == "How fast, by month"
