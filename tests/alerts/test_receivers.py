"""Alert receivers over HTTP: authentication, limits, bad bodies storing nothing, dedupe, incidents, auto-resolve."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.alerts.models import Alert
from blametrail.incidents.models import Incident, TimelineEntry
from blametrail.postmortems.models import Postmortem
from blametrail.webhooks import service as webhooks
from blametrail.webhooks.models import WebhookDelivery
from tests.alerts.test_parsers import ALERTMANAGER_FIRING, GENERIC_FIRING, GRAFANA_FIRING, alertmanager, am_alert, raw
from tests.live import serving

PATHS = {"alertmanager": "alertmanager", "grafana": "grafana", "generic_alert": "alerts"}


def make_hook(rt, member, kind="alertmanager", **options):
    """Create a webhook through the service; return (id, uid, secret, path)."""
    with db.transaction(rt.factory) as s:
        hook, secret = webhooks.create(session=s, actor=member.actor, box=rt.secret_box, kind=kind,
                                       name=options.pop("name", f"{kind} hook"), now=rt.clock.now(), **options)
        return hook.id, hook.uid, secret, f"/webhooks/{PATHS.get(kind, kind)}/{hook.uid}"


def counts(rt) -> dict:
    with db.transaction(rt.factory) as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (Alert, WebhookDelivery, Incident, TimelineEntry, Postmortem)}


def alert_entries(rt, incident_id: int) -> list[TimelineEntry]:
    with db.transaction(rt.factory) as s:
        return list(s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id,
                                                          TimelineEntry.kind == "alert").order_by(TimelineEntry.id)))


def alerts_of(rt) -> list[Alert]:
    with db.transaction(rt.factory) as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


@pytest.fixture
def owner(factory):
    return factory.team()["owner"]


@pytest.fixture
def hook(rt, owner):
    return make_hook(rt, owner, default_service="fallback")


def post(client, path, body, secret, **headers):
    data = body if isinstance(body, bytes) else raw(body)
    return client.post(path, content=data, headers={"Authorization": f"Bearer {secret}",
                                                    "Content-Type": "application/json", **headers})


# --- authentication and routing -------------------------------------------------------------------------------------

def test_alertmanager_delivery_opens_incidents_per_service(client, rt, hook, owner):
    _, _, secret, path = hook
    r = post(client, path, ALERTMANAGER_FIRING, secret)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["received"] == 2 and body["created"] == 2 and body["firing"] == 2
    assert len(body["incidents_opened"]) == 2
    incidents = client.get("/api/v1/incidents", headers=owner.headers).json()["items"]
    by_service = {tuple(i["services"]): i for i in incidents}
    checkout = by_service[("checkout",)]
    assert checkout["title"] == "5xx ratio above 5% on checkout" and checkout["severity"] == "SEV-1"
    assert checkout["started_at"].startswith("2026-11-26T09:58:12")
    timeline = client.get(f"/api/v1/incidents/{checkout['id']}/timeline", headers=owner.headers).json()
    alert_items = [t for t in timeline if t["source"] == "alert"]
    assert len(alert_items) == 1
    item = alert_items[0]
    assert item["evidence_id"].startswith("alert_")
    assert item["description"] == "Alert HighErrorRate firing on checkout: 5xx ratio above 5% on checkout"
    assert set(item["data"]) >= {"alert_id", "name", "status", "service", "severity", "summary", "fingerprint", "labels",
                                 "starts_at", "ends_at"}
    assert item["data"]["fingerprint"] == "c5a3b2e1f0d4a6b7" and item["data"]["severity"] == "SEV-1"
    assert item["data"]["starts_at"] == "2026-11-26T09:58:12Z" and item["data"]["ends_at"] is None
    with db.transaction(rt.factory) as s:
        inc = s.get(Incident, checkout["id"])
        assert (inc.source, inc.source_ref) == ("alert", f"webhook:{hook[0]}")


@pytest.mark.parametrize("how", ["bearer", "header", "basic"])
def test_secret_accepted_in_each_documented_place(client, rt, hook, how):
    _, _, secret, path = hook
    headers = {"bearer": {"Authorization": f"Bearer {secret}"}, "header": {"X-BlameTrail-Secret": secret},
               "basic": {"Authorization": "Basic " + base64.b64encode(f"grafana:{secret}".encode()).decode()}}[how]
    r = client.post(path, content=raw(ALERTMANAGER_FIRING), headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer whsec_wrong"}, {"X-BlameTrail-Secret": "nope"},
                                     {"Authorization": "Basic !!!"}, {"Authorization": "Token abc"}])
def test_wrong_or_missing_secret_is_401_and_stores_nothing(client, rt, hook, headers):
    before = counts(rt)
    r = client.post(hook[3], content=raw(ALERTMANAGER_FIRING), headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "secret" in r.json()["detail"]
    assert counts(rt) == before


def test_another_webhooks_secret_is_refused(client, rt, owner, hook):
    _, _, other_secret, _ = make_hook(rt, owner)
    assert post(client, hook[3], ALERTMANAGER_FIRING, other_secret).status_code == 401


def test_unknown_uid_wrong_kind_and_other_orgs_hook_are_404(client, rt, factory, hook, owner):
    _, uid, secret, _ = hook
    before = counts(rt)
    assert post(client, "/webhooks/alertmanager/nope", ALERTMANAGER_FIRING, secret).status_code == 404
    r = post(client, f"/webhooks/grafana/{uid}", GRAFANA_FIRING, secret)  # an alertmanager hook at the grafana URL
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    other = factory.team()["owner"]
    _, other_uid, _, _ = make_hook(rt, other)
    assert post(client, f"/webhooks/alertmanager/{other_uid}", ALERTMANAGER_FIRING, secret).status_code == 401
    assert counts(rt) == before


def test_grafana_and_generic_receivers(client, rt, owner):
    _, _, g_secret, g_path = make_hook(rt, owner, kind="grafana")
    r = post(client, g_path, GRAFANA_FIRING, g_secret)
    assert r.status_code == 200 and r.json()["created"] == 2 and r.json()["firing"] == 1
    _, _, secret, path = make_hook(rt, owner, kind="generic_alert")
    r = post(client, path, GENERIC_FIRING, secret)
    assert r.status_code == 200 and len(r.json()["incidents_opened"]) == 1
    (a,) = [a for a in alerts_of(rt) if a.name == "QueueBacklog"]
    assert (a.service, a.severity, a.generator_url) == ("orders", "SEV-2", "https://monitoring.example/queues/orders")


# --- bad deliveries store nothing -----------------------------------------------------------------------------------

@pytest.fixture
def small_limit(rt):
    rt.settings.webhook_max_body_bytes = 4096
    return 4096


def test_oversized_body_by_content_length_is_413(client, rt, hook, small_limit):
    before = counts(rt)
    big = alertmanager(am_alert(summary="x" * 5000))
    r = post(client, hook[3], big, hook[2])
    assert r.status_code == 413
    assert r.json()["type"] == "/problems/too-large" and "at most 4096 bytes" in r.json()["detail"]
    assert counts(rt) == before


def test_oversized_streamed_body_without_content_length_is_413(client, rt, hook, small_limit):
    before = counts(rt)
    chunks = [b'{"version": "4", "alerts": [', b" " * 3000, b" " * 3000, b"]}"]
    r = client.post(hook[3], content=iter(chunks), headers={"Authorization": f"Bearer {hook[2]}"})
    assert r.status_code == 413 and "exceeds 4096 bytes" in r.json()["detail"]
    assert counts(rt) == before
    small = [b'{"version": "4", ', b'"alerts": []}']  # a streamed body under the limit is fine
    assert client.post(hook[3], content=iter(small), headers={"Authorization": f"Bearer {hook[2]}"}).status_code == 200


def test_oversized_body_is_refused_before_authentication(client, rt, hook, small_limit):
    r = client.post(hook[3], content=b"x" * 5000, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 413


def test_malformed_json_is_400_with_position(client, rt, hook):
    before = counts(rt)
    r = post(client, hook[3], b'{"version": "4",\n "alerts": [}', hook[2])
    assert r.status_code == 400
    problem = r.json()
    assert problem["type"] == "/problems/malformed-json"
    assert "line 2 column 13" in problem["detail"] and problem["line"] == 2 and problem["column"] == 13
    assert counts(rt) == before


def test_schema_errors_are_422_listing_fields(client, rt, owner):
    _, _, secret, path = make_hook(rt, owner, kind="generic_alert")
    before = counts(rt)
    r = post(client, path, {"alerts": [{"name": "X", "status": "firing", "colour": "red"}], "batch": 1}, secret)
    assert r.status_code == 422
    problem = r.json()
    assert problem["type"] == "/problems/validation"
    assert [e["loc"] for e in problem["errors"]] == [["batch"], ["alerts", 0, "colour"]]
    assert "unknown field" in problem["detail"]
    r = post(client, path, {"alerts": [{"name": "X", "status": "firing"}, {"name": "Y", "status": "??"}]}, secret)
    assert r.status_code == 422 and counts(rt) == before  # one bad alert refuses the whole delivery


def test_wrong_alertmanager_version_is_422(client, rt, hook):
    before = counts(rt)
    r = post(client, hook[3], alertmanager(version="3"), hook[2])
    assert r.status_code == 422 and "version" in r.json()["detail"]
    assert counts(rt) == before


# --- replays and deduplication --------------------------------------------------------------------------------------

def test_replayed_delivery_is_acknowledged_and_stores_nothing_new(client, rt, hook):
    assert post(client, hook[3], ALERTMANAGER_FIRING, hook[2]).json()["status"] == "accepted"
    after_first = counts(rt)
    r = post(client, hook[3], ALERTMANAGER_FIRING, hook[2])
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert counts(rt) == after_first


def test_same_alert_in_a_different_delivery_is_one_event(client, rt, hook):
    first = alertmanager(am_alert(fingerprint="fp1", ends="2026-11-26T10:04:00Z"))
    again = alertmanager(am_alert(fingerprint="fp1", ends="2026-11-26T10:08:00Z"), groupKey="other")
    assert post(client, hook[3], first, hook[2]).json()["created"] == 1
    r = post(client, hook[3], again, hook[2]).json()
    assert r["status"] == "accepted" and r["created"] == 0 and r["unchanged"] == 1 and r["incidents_opened"] == []
    (a,) = alerts_of(rt)
    assert len(alert_entries(rt, a.incident_id)) == 1
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 2


def test_a_new_start_is_a_new_instance_and_closes_the_lost_one(client, rt, hook):
    post(client, hook[3], alertmanager(am_alert(fingerprint="fp1", starts="2026-11-26T09:00:00Z")), hook[2])
    post(client, hook[3], alertmanager(am_alert(fingerprint="fp1", starts="2026-11-26T09:30:00Z")), hook[2])
    old, new = alerts_of(rt)
    assert old.status == "resolved" and old.ends_at == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert new.status == "firing" and new.incident_id == old.incident_id  # still the same open incident


def test_firing_then_resolved(client, rt, hook):
    post(client, hook[3], alertmanager(am_alert(fingerprint="fp1")), hook[2])
    r = post(client, hook[3], alertmanager(am_alert(fingerprint="fp1", status="resolved", ends="2026-11-26T09:59:30Z"),
                                           status="resolved"), hook[2]).json()
    assert r["resolved"] == 1 and r["incidents_resolved"] == []  # auto_resolve is off by default
    (a,) = alerts_of(rt)
    assert a.status == "resolved" and a.ends_at == datetime(2026, 11, 26, 9, 59, 30, tzinfo=UTC)
    firing, resolved = alert_entries(rt, a.incident_id)
    assert (firing.data["status"], resolved.data["status"]) == ("firing", "resolved")
    assert resolved.body == "Alert HighErrorRate resolved on checkout"
    assert resolved.at == a.ends_at and resolved.data["ends_at"] == "2026-11-26T09:59:30Z"
    # the resolution delivered again changes nothing
    again = alertmanager(am_alert(fingerprint="fp1", status="resolved", ends="2026-11-26T09:59:30Z"), groupKey="x")
    assert post(client, hook[3], again, hook[2]).json()["unchanged"] == 1
    assert len(alert_entries(rt, a.incident_id)) == 2
    with db.transaction(rt.factory) as s:
        assert s.get(Incident, a.incident_id).status == "open"


def test_resolved_alert_never_seen_firing_is_stored_without_opening_an_incident(client, rt, hook):
    r = post(client, hook[3], alertmanager(am_alert(fingerprint="fp9", status="resolved", ends="2026-11-26T09:59:00Z")),
             hook[2]).json()
    assert r["created"] == 1 and r["incidents_opened"] == []
    (a,) = alerts_of(rt)
    assert a.status == "resolved" and a.incident_id is None


def test_generic_alert_without_start_matches_the_firing_instance(client, rt, owner, clock):
    _, _, secret, path = make_hook(rt, owner, kind="generic_alert", default_service="batch")
    fire = {"alerts": [{"name": "NightlyJobLate", "status": "firing"}]}
    post(client, path, fire, secret)
    clock.advance(minutes=5)
    post(client, path, {"alerts": [{"name": "NightlyJobLate", "status": "resolved"}]}, secret)
    (a,) = alerts_of(rt)
    assert (a.status, a.starts_at, a.ends_at) == ("resolved", datetime(2026, 11, 26, 10, tzinfo=UTC),
                                                  datetime(2026, 11, 26, 10, 5, tzinfo=UTC))
    clock.advance(minutes=5)
    # the same body again is a replay; a sender announcing a new occurrence gives it a delivery id
    assert post(client, path, fire, secret).json()["status"] == "duplicate"
    assert post(client, path, fire, secret, **{"X-BlameTrail-Delivery": "run-2"}).json()["created"] == 1
    assert [x.status for x in alerts_of(rt)] == ["resolved", "firing"]


def test_parallel_identical_deliveries_store_once(live_url, rt, hook):
    _, _, secret, path = hook
    body = raw(ALERTMANAGER_FIRING)

    def send(_):
        with httpx.Client(base_url=live_url, timeout=30) as c:
            return c.post(path, content=body, headers={"Authorization": f"Bearer {secret}"}).json()["status"]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(8)))
    assert sorted(statuses) == ["accepted"] + ["duplicate"] * 7
    assert counts(rt)["Alert"] == 2 and counts(rt)["Incident"] == 2


def test_parallel_different_deliveries_of_one_service_open_one_incident(live_url, rt, hook):
    _, _, secret, path = hook

    def send(i):
        body = raw(alertmanager(am_alert(name=f"A{i}", fingerprint=f"fp{i}")))
        with httpx.Client(base_url=live_url, timeout=30) as c:
            return c.post(path, content=body, headers={"Authorization": f"Bearer {secret}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(8))) == {200}
    assert counts(rt)["Incident"] == 1 and {a.incident_id for a in alerts_of(rt)} != {None}


# --- attach, open, auto-resolve -------------------------------------------------------------------------------------

def test_firing_alert_attaches_to_the_open_incident_of_its_service(client, rt, owner, hook):
    manual = client.post("/api/v1/incidents", headers=owner.headers,
                         json={"title": "Checkout slow", "severity": "SEV-2", "services": ["checkout"]}).json()
    r = post(client, hook[3], alertmanager(am_alert(fingerprint="fp1")), hook[2]).json()
    assert r["incidents_opened"] == [] and r["incidents_updated"] == [manual["id"]]
    (a,) = alerts_of(rt)
    assert a.incident_id == manual["id"] and len(alert_entries(rt, manual["id"])) == 1


def test_without_open_incidents_a_lone_alert_is_only_recorded(client, rt, owner):
    _, _, secret, path = make_hook(rt, owner, open_incidents=False)
    r = post(client, path, alertmanager(am_alert(fingerprint="fp1")), secret).json()
    assert r["created"] == 1 and r["incidents_opened"] == [] and r["incidents_updated"] == []
    assert alerts_of(rt)[0].incident_id is None and counts(rt)["Incident"] == 0
    manual = client.post("/api/v1/incidents", headers=owner.headers,
                         json={"title": "Checkout slow", "services": ["checkout"]}).json()
    post(client, path, alertmanager(am_alert(name="Other", fingerprint="fp2")), secret)
    assert alerts_of(rt)[1].incident_id == manual["id"]  # attaching still happens


def test_alerts_without_service_share_one_incident_per_webhook(client, rt, owner):
    _, _, secret, path = make_hook(rt, owner)
    post(client, path, alertmanager(am_alert(name="A", fingerprint="a", service=None),
                                    am_alert(name="B", fingerprint="b", service=None)), secret)
    a, b = alerts_of(rt)
    assert a.incident_id is not None and a.incident_id == b.incident_id


def test_auto_resolve_when_every_alert_resolved_triggers_the_postmortem(client, rt, owner):
    hook_id, _, secret, path = make_hook(rt, owner, auto_resolve=True, name="prod-am")
    post(client, path, alertmanager(am_alert(name="A", fingerprint="a"), am_alert(name="B", fingerprint="b")), secret)
    incident_id = alerts_of(rt)[0].incident_id
    r = post(client, path, alertmanager(am_alert(name="A", fingerprint="a", status="resolved",
                                                 ends="2026-11-26T09:59:00Z")), secret).json()
    assert r["incidents_resolved"] == []
    assert client.get(f"/api/v1/incidents/{incident_id}", headers=owner.headers).json()["status"] == "open"
    r = post(client, path, alertmanager(am_alert(name="B", fingerprint="b", status="resolved",
                                                 ends="2026-11-26T09:59:40Z")), secret).json()
    assert r["incidents_resolved"] == [incident_id]
    inc = client.get(f"/api/v1/incidents/{incident_id}", headers=owner.headers).json()
    assert inc["status"] == "resolved" and inc["resolved_by"] == "alert:prod-am"
    assert inc["resolved_at"].startswith("2026-11-26T09:59:40")
    pm = client.get(f"/api/v1/incidents/{incident_id}/postmortem", headers=owner.headers).json()
    assert pm["status"] == "draft"  # auto-triggered and drafted by the immediate queue
    runs = client.get(f"/api/v1/incidents/{incident_id}/postmortem/runs", headers=owner.headers).json()
    evidence = json.dumps(runs[0]["evidence"])
    assert all(f'"alert_{e.id}"' in evidence for e in alert_entries(rt, incident_id))  # 2 firing + 2 resolved


def test_auto_resolve_clamps_a_future_end_to_now(client, rt, owner, clock):
    _, _, secret, path = make_hook(rt, owner, auto_resolve=True)
    post(client, path, alertmanager(am_alert(fingerprint="a")), secret)
    post(client, path, alertmanager(am_alert(fingerprint="a", status="resolved", ends="2026-11-26T10:00:30Z")), secret)
    (a,) = alerts_of(rt)
    inc = client.get(f"/api/v1/incidents/{a.incident_id}", headers=owner.headers).json()
    assert inc["status"] == "resolved" and inc["resolved_at"] == "2026-11-26T10:00:00Z"


def test_no_auto_resolve_while_a_person_already_resolved(client, rt, owner):
    _, _, secret, path = make_hook(rt, owner, auto_resolve=True)
    post(client, path, alertmanager(am_alert(fingerprint="a")), secret)
    incident_id = alerts_of(rt)[0].incident_id
    client.post(f"/api/v1/incidents/{incident_id}/resolve", headers=owner.headers)
    r = post(client, path, alertmanager(am_alert(fingerprint="a", status="resolved", ends="2026-11-26T09:59:00Z")),
             secret)
    assert r.status_code == 200 and r.json()["incidents_resolved"] == []
    assert len(alert_entries(rt, incident_id)) == 2  # the resolution is still recorded as evidence


@pytest.fixture
def live_url(app):
    """Serve the app with uvicorn in a thread on a free loopback port (real concurrency)."""
    with serving(app) as url:
        yield url


# --- batches: one delivery carrying many alerts ---------------------------------------------------------------------

def test_a_storm_delivery_is_applied_in_a_bounded_number_of_statements(client, rt, hook):
    """200 alerts over 4 services in one delivery: per-delivery lookups and batched writes, never per-alert queries."""
    from sqlalchemy import event

    _, _, secret, path = hook
    warm = alertmanager(*[am_alert(fingerprint=f"w{i}", service=f"svc{i}") for i in range(4)])
    assert post(client, path, warm, secret).status_code == 200  # opens the 4 incidents
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        storm = alertmanager(*[am_alert(fingerprint=f"s{i:03d}", service=f"svc{i % 4}", instance=f"10.0.0.{i}")
                               for i in range(200)])
        r = post(client, path, storm, secret)
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
    assert r.status_code == 200 and r.json()["created"] == 200 and r.json()["incidents_opened"] == []
    assert len(set(r.json()["incidents_updated"])) == 4
    # no per-alert reads (the immediate test queue also runs the 4 incidents' summary refreshes inside this count);
    # SQLite inserts row by row (no ordered RETURNING batches), PostgreSQL in batches
    assert statements.count("SELECT") <= 60  # was over 600 when each alert looked itself up
    assert statements.count("INSERT") <= 2 * 200 + 10
    assert counts(rt)["Alert"] == 204


def test_one_delivery_may_mention_an_alert_twice(client, rt, hook):
    """Firing then resolved for the same instance in one delivery (the generic shape allows it): both transitions."""
    _, _, secret, path = hook
    body = alertmanager(am_alert(fingerprint="twice"),
                        am_alert(fingerprint="twice", status="resolved", ends="2026-11-26T09:59:00Z"),
                        am_alert(fingerprint="other", service="checkout"))
    r = post(client, path, body, secret)
    assert r.status_code == 200
    assert r.json()["created"] == 2 and r.json()["firing"] == 2 and r.json()["resolved"] == 1
    rows = {a.fingerprint: a for a in alerts_of(rt)}
    assert rows["twice"].status == "resolved" and rows["other"].status == "firing"
    entries = alert_entries(rt, rows["twice"].incident_id)
    assert [e.data["status"] for e in entries if e.data["fingerprint"] == "twice"] == ["firing", "resolved"]


def test_resolve_racing_its_own_firing_delivery_is_not_lost(rt, hook):
    """PostgreSQL: a resolved notification whose instance another delivery is inserting right now (not committed yet)
    waits for it, then resolves it; SQLite serializes deliveries, so there the race cannot happen."""
    import threading

    from sqlalchemy import text

    from blametrail.alerts import parsers
    from blametrail.alerts import service as alerts
    from blametrail.webhooks.models import Webhook

    if rt.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL); SQLite runs one delivery at a time")
    hook_id = hook[0]
    firing = raw(alertmanager(am_alert(fingerprint="race", service="checkout")))
    resolved = raw(alertmanager(am_alert(fingerprint="race", service="checkout", status="resolved",
                                         ends="2026-11-26T09:59:30Z")))
    results, errors, firing_written = {}, [], threading.Event()

    def deliver(name: str, body: bytes, hold: threading.Event | None) -> None:
        try:
            with db.transaction(rt.factory) as s:
                batch = parsers.parse("alertmanager", body, default_service=None, default_severity="SEV-3")
                results[name] = alerts.ingest(session=s, hook=s.get(Webhook, hook_id), alerts=batch,
                                              now=rt.clock.now()).as_dict()
                if hold is not None:  # keep the firing delivery's transaction open until the other one waits on it
                    firing_written.set()
                    hold.wait(60)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    release = threading.Event()
    first = threading.Thread(target=deliver, args=("firing", firing, release))
    first.start()
    assert firing_written.wait(60)
    second = threading.Thread(target=deliver, args=("resolved", resolved, None))
    second.start()
    with rt.engine.connect() as conn:  # wait (bounded) until the resolve is blocked on the uncommitted insert
        for _ in range(600):
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'")).scalar()
            if waiting:
                break
            threading.Event().wait(0.05)
    release.set()
    first.join(60)
    second.join(60)
    assert not errors, errors
    assert results["resolved"]["resolved"] == 1
    row = next(a for a in alerts_of(rt) if a.fingerprint == "race")
    assert row.status == "resolved"
    assert [e.data["status"] for e in alert_entries(rt, row.incident_id)] == ["firing", "resolved"]
