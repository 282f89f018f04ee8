"""Integration settings pages: monitors, inbound webhooks (secret shown once), observability connections."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail import db
from blametrail.integrations import service as connections
from blametrail.monitors import service as monitors
from blametrail.monitors.checks import CheckOutcome
from blametrail.monitors.schemas import MonitorCreate
from blametrail.webhooks import service as webhooks
from tests.web.test_pages import browser, csrf, form_fields, post, soup, team, text  # noqa: F401 — fixtures

PAGES = ("/settings/monitors", "/settings/webhooks", "/settings/connections")
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens there, so the connection is refused
TOKEN = "prom-token-7f3a9c1e5b"


# --- helpers ------------------------------------------------------------------------------------

def monitor_form(**overrides) -> dict:
    return {"name": "Checkout health", "url": "https://checkout.example/healthz", "method": "GET",
            "expected_statuses": "200, 204", "keyword": "ok", "interval_seconds": "30", "timeout_seconds": "5",
            "failure_threshold": "3", "recovery_threshold": "2", "service": "checkout", "severity": "SEV-1",
            **overrides}


def make_monitor(rt, member, name: str = "API health") -> int:
    with db.transaction(rt.factory) as s:
        return monitors.create(session=s, actor=member.actor, now=rt.clock.now(), data=MonitorCreate(
            name=name, url="https://api.example/healthz", service="api")).id


def make_webhook(rt, member, kind: str = "alertmanager") -> tuple[int, str]:
    with db.transaction(rt.factory) as s:
        hook, secret = webhooks.create(session=s, actor=member.actor, box=rt.secret_box, kind=kind, name=f"{kind} hook",
                                       now=rt.clock.now())
        return hook.id, secret


def create_connection(c, **overrides):
    data = {"provider": "prometheus", "name": "prod prometheus", "endpoint": UNREACHABLE, "cred_token": TOKEN,
            "signal_name": ["error_rate", ""], "signal_kind": ["metric", "metric"],
            "signal_query": ['sum(rate(http_requests_total{service="$service",code=~"5.."}[5m]))', ""],
            "signal_services": ["checkout, payments", ""], "signal_unit": ["req/s", ""], **overrides}
    return post(c, "/settings/connections", data, follow_redirects=False)


def connection_id(rt, member) -> int:
    with db.transaction(rt.factory) as s:
        return connections.list_connections(session=s, org_id=member.actor.org_id)[0].id


def post_forms(page) -> list:
    """The page's POST forms other than the header's logout."""
    return [f for f in page.select("main form[method=post]")]


# --- navigation and permissions -----------------------------------------------------------------

def test_settings_and_nav_link_to_the_integration_pages(browser, team):
    t = team()
    c = browser(t["viewer"])
    page = soup(c.get("/settings"))
    extra = ("/settings/integrations", "/settings/outbound-webhooks")
    assert {a["href"] for a in page.select("ul.integration-links a")} == {*PAGES, *extra}
    for url in (*PAGES, *extra):
        r = c.get(url)
        assert r.status_code == 200
        page = soup(r)
        assert text(page.select_one("nav.main-nav a[aria-current=page]")) == "Settings"
        assert page.select_one("nav[aria-label=Integrations] a[aria-current=page]")["href"] == url


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_read_only(browser, team, rt, role):
    t = team()
    monitor_id = make_monitor(rt, t["owner"])
    webhook_id, _ = make_webhook(rt, t["owner"])
    c = browser(t[role])
    assert create_connection(browser(t["owner"])).status_code == 303
    conn_id = connection_id(rt, t["owner"])
    for url in (*PAGES, f"/settings/monitors/{monitor_id}", f"/settings/webhooks/{webhook_id}",
                f"/settings/connections/{conn_id}"):
        r = c.get(url)
        assert r.status_code == 200, url
        page = soup(r)
        assert post_forms(page) == [], url  # no create, edit, delete, rotate or test forms
        assert page.select_one(".read-only-note") is not None or "/settings/" in url
    assert "API health" in text(soup(c.get("/settings/monitors")).select_one("table.monitor-table"))
    forbidden = [
        ("/settings/monitors", monitor_form()), (f"/settings/monitors/{monitor_id}", monitor_form()),
        (f"/settings/monitors/{monitor_id}/disable", {}), (f"/settings/monitors/{monitor_id}/delete", {}),
        ("/settings/webhooks", {"kind": "grafana", "name": "x"}), (f"/settings/webhooks/{webhook_id}/rotate", {}),
        (f"/settings/webhooks/{webhook_id}/disable", {}),
        ("/settings/connections", {"provider": "prometheus", "name": "x", "endpoint": UNREACHABLE}),
        (f"/settings/connections/{conn_id}", {"name": "renamed", "endpoint": UNREACHABLE}),
        (f"/settings/connections/{conn_id}/test", {}), (f"/settings/connections/{conn_id}/delete", {}),
    ]
    for url, data in forbidden:
        r = post(c, url, data)
        assert r.status_code == 403, url
        assert "cannot manage" in text(soup(r).select_one("#error-heading + p")), url
    with db.transaction(rt.factory) as s:
        actor = t["owner"].actor
        assert [m.name for m in monitors.list_monitors(session=s, actor=actor)] == ["API health"]
        assert len(webhooks.list_webhooks(session=s, org_id=actor.org_id)) == 1
        connection = connections.get_or_404(session=s, org_id=actor.org_id, connection_id=conn_id)
        assert connection.name == "prod prometheus" and connection.last_test_at is None


def test_foreign_ids_answer_404(browser, team, rt):
    mine, theirs = team(), team()
    monitor_id = make_monitor(rt, theirs["owner"])
    webhook_id, _ = make_webhook(rt, theirs["owner"])
    assert create_connection(browser(theirs["owner"])).status_code == 303
    conn_id = connection_id(rt, theirs["owner"])
    c = browser(mine["owner"])
    for url in (f"/settings/monitors/{monitor_id}", f"/settings/webhooks/{webhook_id}",
                f"/settings/connections/{conn_id}", "/settings/monitors/999999"):
        assert c.get(url).status_code == 404, url
    for url in (f"/settings/monitors/{monitor_id}", f"/settings/monitors/{monitor_id}/enable",
                f"/settings/monitors/{monitor_id}/delete", f"/settings/webhooks/{webhook_id}/rotate",
                f"/settings/webhooks/{webhook_id}/disable", f"/settings/connections/{conn_id}",
                f"/settings/connections/{conn_id}/test", f"/settings/connections/{conn_id}/delete"):
        r = post(c, url, monitor_form() if url.endswith(str(monitor_id)) else {})
        assert r.status_code == 404, url
    viewer = browser(mine["viewer"])  # 404 before 403: a foreign id never reveals that it exists
    assert post(viewer, f"/settings/webhooks/{webhook_id}/rotate").status_code == 404


def test_every_form_carries_the_csrf_token_and_every_field_a_label(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    monitor_id = make_monitor(rt, t["owner"])
    webhook_id, _ = make_webhook(rt, t["owner"])
    assert create_connection(c).status_code == 303
    conn_id = connection_id(rt, t["owner"])
    token = csrf(c)
    for url in (*PAGES, f"/settings/monitors/{monitor_id}", f"/settings/webhooks/{webhook_id}",
                f"/settings/connections/{conn_id}"):
        page = soup(c.get(url))
        forms = post_forms(page)
        assert forms, url
        for form in forms:
            assert form.select_one("input[type=hidden][name=csrftoken]")["value"] == token, (url, form.get("action"))
        for el in page.select("main input:not([type=hidden]), main select, main textarea"):
            assert page.select_one(f"label[for='{el['id']}']") is not None, (url, el)


# --- monitors -----------------------------------------------------------------------------------

def test_owner_creates_a_monitor_via_the_form_and_sees_it_listed(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    page = soup(c.get("/settings/monitors"))
    assert page.select_one("form[action='/settings/monitors']") is not None
    assert page.select_one("p.empty") is not None
    assert [page.select_one(f"#new-{k}")["value"] for k in ("interval", "timeout", "failures", "recoveries")] == [
        "60", "10", "2", "2"]  # the schema's defaults
    r = post(c, "/settings/monitors", monitor_form(), follow_redirects=False)
    assert r.status_code == 303
    detail = soup(c.get(r.headers["location"]))
    assert "Monitor Checkout health created" in text(detail.select_one(".flash-success"))
    assert text(detail.select_one("#monitor-state")) == "Unknown"
    row = soup(c.get("/settings/monitors")).select_one("tr.monitor-row")
    cells = [text(td) for td in row.select("td")]
    assert cells == ["Checkout health", "GET https://checkout.example/healthz", "Unknown", "Not checked yet", "30 s",
                     "checkout", "SEV-1"]
    with db.transaction(rt.factory) as s:
        (m,) = monitors.list_monitors(session=s, actor=t["owner"].actor)
        assert (m.expected_statuses, m.keyword, m.timeout_seconds, m.failure_threshold) == ([200, 204], "ok", 5.0, 3)


def test_monitor_validation_errors_rerender_with_422(browser, team, rt):
    t = team()
    c = browser(t["admin"])
    r = post(c, "/settings/monitors", monitor_form(expected_statuses="200, 2xx", url="ftp://x", timeout_seconds="45"))
    assert r.status_code == 422
    page = soup(r)
    errors = [text(li) for li in page.select("#new-errors li")]
    assert "Expected statuses: '2xx' is not a status code; list numbers such as 200, 204." in errors
    assert "URL: the URL must start with http:// or https://" in errors
    assert page.select_one("#new-name")["value"] == "Checkout health"  # what was typed is kept
    assert page.select_one("#new-statuses")["value"] == "200, 2xx"
    r = post(c, "/settings/monitors", monitor_form(timeout_seconds="45"))
    assert r.status_code == 422
    assert [text(li) for li in soup(r).select("#new-errors li")] == [
        "Timeout (seconds) must be shorter than interval (seconds)"]
    make_monitor(rt, t["owner"], name="Taken")
    r = post(c, "/settings/monitors", monitor_form(name="Taken"))
    assert r.status_code == 409
    assert "already exists" in text(soup(r).select_one("#new-errors"))
    with db.transaction(rt.factory) as s:
        assert [m.name for m in monitors.list_monitors(session=s, actor=t["owner"].actor)] == ["Taken"]


def test_monitor_detail_shows_recent_checks(browser, team, rt, clock):
    t = team()
    monitor_id = make_monitor(rt, t["owner"])
    outcomes = [CheckOutcome(ok=True, status_code=200, latency_ms=42),
                CheckOutcome(ok=False, status_code=503, latency_ms=17, error_kind="status",
                             error="Unexpected status 503 (expected 2xx or 3xx)."),
                CheckOutcome(ok=False, latency_ms=10_000, error_kind="timeout", error="Timed out after 10 s.")]
    for outcome in outcomes:
        now = clock.advance(seconds=60)
        with db.transaction(rt.factory) as s:
            monitors.apply_result(session=s, monitor_id=monitor_id, outcome=outcome, checked_at=now, now=now)
    c = browser(t["viewer"])
    page = soup(c.get(f"/settings/monitors/{monitor_id}"))
    rows = [[text(td) for td in tr.select("td")] for tr in page.select("table.checks tbody tr")]
    assert rows == [
        ["2026-11-26 10:03:00 UTC", "Failed", "—", "10000 ms", "timeout", "Timed out after 10 s."],
        ["2026-11-26 10:02:00 UTC", "Failed", "503", "17 ms", "status", "Unexpected status 503 (expected 2xx or 3xx)."],
        ["2026-11-26 10:01:00 UTC", "OK", "200", "42 ms", "—", ""],
    ]
    assert text(page.select_one("#monitor-state")) == "Down"  # two failures reach the default threshold
    incident = page.select_one("a[href^='/incidents/']")
    assert incident is not None and text(incident).startswith("#")
    assert "Timed out after 10 s." in text(page.select_one("#monitor-last-error"))
    row = soup(c.get("/settings/monitors")).select_one("tr.monitor-row")
    assert text(row.select_one(".monitor-state")) == "Down"
    assert "2026-11-26 10:03:00 UTC failed" in text(row)


def test_monitor_edit_pause_enable_and_delete(browser, team, rt):
    t = team()
    monitor_id = make_monitor(rt, t["owner"])
    c = browser(t["admin"])
    form = soup(c.get(f"/settings/monitors/{monitor_id}")).select_one("form#edit-monitor-form")
    data = {k: v[0] for k, v in form_fields(form).items()}
    assert data["name"] == "API health" and data["expected_statuses"] == "" and data["timeout_seconds"] == "10"
    data.update(name="API health v2", expected_statuses="200", interval_seconds="120")
    r = c.post(f"/settings/monitors/{monitor_id}", data=data, follow_redirects=False)
    assert r.status_code == 303
    r = c.post(f"/settings/monitors/{monitor_id}", data={**data, "interval_seconds": "5"})
    assert r.status_code == 422
    page = soup(r)
    assert "Interval (seconds): Input should be greater than or equal to 10" in text(page.select_one("#edit-errors"))
    assert page.select_one("#edit-interval")["value"] == "5"
    r = post(c, f"/settings/monitors/{monitor_id}/disable", follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    assert "paused" in text(page.select_one(".flash-success"))
    assert "Paused" in text(page.select_one("#monitor-state"))
    assert page.select_one("form.monitor-enable-form") is not None
    with db.transaction(rt.factory) as s:
        m = monitors.get_or_404(session=s, org_id=t["owner"].actor.org_id, monitor_id=monitor_id)
        assert (m.name, m.expected_statuses, m.interval_seconds, m.enabled) == ("API health v2", [200], 120, False)
    assert post(c, f"/settings/monitors/{monitor_id}/enable", follow_redirects=False).status_code == 303
    r = post(c, f"/settings/monitors/{monitor_id}/delete", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings/monitors"
    flashes = [text(p) for p in soup(c.get("/settings/monitors")).select(".flash-success")]
    assert flashes[0].endswith("enabled: its next check runs right away.") and "deleted" in flashes[1]
    assert c.get(f"/settings/monitors/{monitor_id}").status_code == 404


# --- inbound webhooks ---------------------------------------------------------------------------

def test_create_webhook_shows_the_secret_once_then_only_its_prefix(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = post(c, "/settings/webhooks", {"kind": "alertmanager", "name": "prod alertmanager",
                                       "default_service": "platform", "default_severity": "SEV-2",
                                       "open_incidents": "on", "auto_resolve": "on"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    page = soup(r)
    secret = text(page.select_one("#webhook-secret"))
    url = text(page.select_one("#webhook-url"))
    assert secret.startswith("whsec_") and len(secret) > 30
    assert url.startswith("http://testserver/webhooks/alertmanager/")  # the address this page was reached at
    assert "Copy the secret now: it will not be shown again." in text(page.select_one("#secret-notice"))
    snippet = page.select_one(".webhook-snippet").get_text()
    assert "webhook_configs:" in snippet and "http_config:" in snippet and "authorization:" in snippet
    assert f'credentials: "{secret}"' in snippet and f'url: "{url}"' in snippet
    with db.transaction(rt.factory) as s:
        (hook,) = webhooks.list_webhooks(session=s, org_id=t["owner"].actor.org_id)
        assert (hook.default_service, hook.default_severity, hook.open_incidents, hook.auto_resolve) == (
            "platform", "SEV-2", True, True)
        webhooks.check_secret(hook, secret, rt.secret_box)  # the secret shown is the one that works

    listing = c.get("/settings/webhooks")
    assert secret not in listing.text
    row = soup(listing).select_one("tr.webhook-row")
    assert text(row.select_one(".secret-prefix")) == secret[:10] + "…"
    assert text(row.select_one(".webhook-url")) == url
    assert [text(td) for td in row.select("td")][1] == "Prometheus Alertmanager"
    detail = c.get(f"/settings/webhooks/{hook.id}")
    assert secret not in detail.text
    assert "<your webhook secret>" in soup(detail).select_one(".webhook-snippet").get_text()


@pytest.mark.parametrize("kind, expected", [
    ("grafana", ["Webhook", "POST", "Bearer"]),
    ("github", ["application/json", "deployment_status", "push", "Payload URL"]),
    ("generic_alert", ["curl", "Authorization: Bearer", '"alerts"']),
    ("generic_deploy", ["curl", "Authorization: Bearer", '"version"']),
])
def test_secret_page_has_a_config_snippet_for_the_kind(browser, team, kind, expected):
    t = team()
    c = browser(t["admin"])
    page = soup(post(c, "/settings/webhooks", {"kind": kind, "name": f"{kind} sender"}))
    secret = text(page.select_one("#webhook-secret"))
    snippet = page.select_one(f".webhook-snippet[data-kind={kind}]").get_text()
    for word in expected:
        assert word in snippet, word
    assert secret in snippet and text(page.select_one("#webhook-url")) in snippet


def test_rotate_shows_a_new_secret_and_the_old_one_stops_working(browser, team, rt):
    t = team()
    webhook_id, old = make_webhook(rt, t["owner"], kind="github")
    c = browser(t["owner"])
    r = post(c, f"/settings/webhooks/{webhook_id}/rotate")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    page = soup(r)
    new = text(page.select_one("#webhook-secret"))
    assert new.startswith("whsec_") and new != old
    assert "The old secret stopped working" in text(page.select_one("#secret-notice"))
    listing = c.get("/settings/webhooks")
    assert new not in listing.text
    assert text(soup(listing).select_one(".secret-prefix")) == new[:10] + "…"
    with db.transaction(rt.factory) as s:
        hook = webhooks.get_or_404(session=s, org_id=t["owner"].actor.org_id, webhook_id=webhook_id)
        assert webhooks.secret_of(hook, rt.secret_box) == new


def test_webhook_detail_lists_deliveries_and_disables(browser, team, rt, clock):
    t = team()
    webhook_id, _ = make_webhook(rt, t["owner"])
    with db.transaction(rt.factory) as s:
        hook = webhooks.get_or_404(session=s, org_id=t["owner"].actor.org_id, webhook_id=webhook_id)
        webhooks.record_delivery(session=s, hook=hook, key="sha256:aaa", now=clock.now(), event="alerts", items=2,
                                 summary="2 alerts: HighErrorRate firing, DiskFull resolved")
        webhooks.record_delivery(session=s, hook=hook, key="sha256:bbb", now=clock.now() + timedelta(minutes=5),
                                 items=1, summary="1 alert: HighErrorRate resolved")
    viewer = browser(t["viewer"])
    page = soup(viewer.get(f"/settings/webhooks/{webhook_id}"))
    rows = [[text(td) for td in tr.select("td")] for tr in page.select("table.deliveries tbody tr")]
    assert rows == [["2026-11-26 10:05:00 UTC", "—", "1", "1 alert: HighErrorRate resolved"],
                    ["2026-11-26 10:00:00 UTC", "alerts", "2", "2 alerts: HighErrorRate firing, DiskFull resolved"]]
    assert text(page.select_one("#webhook-status")) == "Active"
    c = browser(t["admin"])
    r = post(c, f"/settings/webhooks/{webhook_id}/disable", follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    assert "disabled" in text(page.select_one(".flash-success"))
    assert text(page.select_one("#webhook-status")) == "Disabled"
    assert page.select_one("form.webhook-disable-form") is None
    assert "Disabled" in text(soup(c.get("/settings/webhooks")).select_one("tr.webhook-row"))


def test_webhook_validation_error_rerenders_with_422(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = post(c, "/settings/webhooks", {"kind": "pagerduty", "name": "", "default_service": "checkout"})
    assert r.status_code == 422
    page = soup(r)
    errors = [text(li) for li in page.select("#new-webhook-errors li")]
    assert any(e.startswith("Kind: Input should be 'alertmanager'") for e in errors)
    assert any(e.startswith("Name:") for e in errors)
    assert page.select_one("#wh-service")["value"] == "checkout"
    assert page.select_one("#wh-open").has_attr("checked") is False  # as submitted: unticked
    assert page.select_one("#webhook-secret") is None
    with db.transaction(rt.factory) as s:
        assert webhooks.list_webhooks(session=s, org_id=t["owner"].actor.org_id) == []


# --- observability connections ------------------------------------------------------------------

def test_create_connection_never_shows_the_credentials_again(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = create_connection(c)
    assert r.status_code == 303
    detail = c.get(r.headers["location"])
    assert TOKEN not in detail.text
    page = soup(detail)
    assert "Connection prod prometheus saved" in text(page.select_one(".flash-success"))
    assert text(page.select_one("#connection-credentials")) == "Set (token)"
    assert [text(td) for td in page.select("tr.signal-row td")] == [
        "error_rate (req/s)", "metric", 'sum(rate(http_requests_total{service="$service",code=~"5.."}[5m]))',
        "checkout, payments"]
    assert all(not el.get("value") for el in page.select("input[name^=cred_]"))
    assert text(page.select_one("#test-result")) == "Not tested yet."
    listing = c.get("/settings/connections")
    assert TOKEN not in listing.text
    cells = [text(td) for td in soup(listing).select("tr.connection-row td")]
    assert cells == ["prod prometheus", "Prometheus", "http://127.0.0.1:9", "1", "Not tested"]


def test_test_connection_shows_the_actionable_error(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    create_connection(c)
    conn_id = connection_id(rt, t["owner"])
    page = soup(c.get(f"/settings/connections/{conn_id}"))
    form = page.select_one("form.connection-test-form")
    assert form["action"] == form["hx-post"] == f"/settings/connections/{conn_id}/test"
    assert form["hx-target"] == "#test-result"

    r = post(c, f"/settings/connections/{conn_id}/test", follow_redirects=False)  # a plain form post
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    flash = text(page.select_one(".flash-error"))
    assert flash.startswith("Connection test failed:") and "could not be reached: connection refused" in flash
    assert "could not be reached" in text(page.select_one("#test-result .test-failed"))

    r = c.post(f"/settings/connections/{conn_id}/test", headers={"HX-Request": "true", "x-csrftoken": csrf(c)})
    assert r.status_code == 200
    fragment = soup(r)
    assert fragment.select_one("html") is None  # the box's content, not a page
    assert "could not be reached: connection refused" in text(fragment.select_one(".test-failed"))
    cells = [text(td) for td in soup(c.get("/settings/connections")).select("tr.connection-row td")]
    assert cells[-1].startswith("Failed") and "could not be reached" in cells[-1]
    with db.transaction(rt.factory) as s:
        connection = connections.get_or_404(session=s, org_id=t["owner"].actor.org_id, connection_id=conn_id)
        assert connection.last_test_ok is False and "could not be reached" in connection.last_test_error


def test_connection_validation_errors_rerender_with_422(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = create_connection(c, endpoint="prometheus:9090")
    assert r.status_code == 422
    page = soup(r)
    assert [text(li) for li in page.select("#new-connection-errors li")] == [
        "Endpoint: give an http:// or https:// URL with a host"]
    assert page.select_one("#cn-name")["value"] == "prod prometheus"
    assert page.select_one("#cn-sig-name-1")["value"] == "error_rate"
    assert TOKEN not in r.text  # not even echoed back after an error
    r = create_connection(c, signal_name=["", "logs"], signal_kind=["metric", "log"], signal_query=["", "{app=\"x\"}"],
                          signal_services=["", ""], signal_unit=["", ""])
    assert r.status_code == 422
    assert [text(li) for li in soup(r).select("#new-connection-errors li")] == [
        "Signal row 2 kind: prometheus signals can only be: metric"]
    r = create_connection(c, cred_api_key="dd-key")
    assert r.status_code == 422
    assert "unknown credential field(s) api_key for prometheus" in text(soup(r).select_one("#new-connection-errors"))
    with db.transaction(rt.factory) as s:
        assert connections.list_connections(session=s, org_id=t["owner"].actor.org_id) == []


def test_edit_connection_keeps_blank_credentials_and_deletes(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    create_connection(c)
    conn_id = connection_id(rt, t["owner"])
    form = soup(c.get(f"/settings/connections/{conn_id}")).select_one("form.edit-connection-form")
    data = form_fields(form)
    assert data["signal_name"] == ["error_rate", "", ""] and data["enabled"] == ["on"]
    data["name"] = ["prod prometheus (eu)"]
    data["signal_name"][1], data["signal_query"][1] = "p99_latency", "histogram_quantile(0.99, x)"
    r = c.post(f"/settings/connections/{conn_id}", data=data, follow_redirects=False)
    assert r.status_code == 303
    with db.transaction(rt.factory) as s:
        connection = connections.get_or_404(session=s, org_id=t["owner"].actor.org_id, connection_id=conn_id)
        assert connection.name == "prod prometheus (eu)"
        assert [sig["name"] for sig in connection.signals] == ["error_rate", "p99_latency"]
        assert connections.credential_keys(connection, rt.secret_box) == ["token"]  # blank fields kept them
    data["name"] = [""]
    r = c.post(f"/settings/connections/{conn_id}", data=data)
    assert r.status_code == 422
    assert text(soup(r).select_one("#edit-connection-errors")).startswith("Name:")
    r = post(c, f"/settings/connections/{conn_id}/delete", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings/connections"
    assert c.get(f"/settings/connections/{conn_id}").status_code == 404
