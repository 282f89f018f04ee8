"""Group commit of alert deliveries: deliveries arriving together share a transaction, each answered on its own."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.alerts import service as alerts
from blametrail.alerts.models import Alert
from blametrail.incidents.models import TimelineEntry
from blametrail.web import alert_batches
from blametrail.webhooks.models import WebhookDelivery
from tests.alerts.test_parsers import alertmanager, am_alert, raw
from tests.alerts.test_receivers import counts, make_hook


@pytest.fixture
def owner(factory):
    return factory.team()["owner"]


def _body(i: int, service: str = "checkout", status: str = "firing") -> bytes:
    return raw(alertmanager(am_alert(name=f"A{i}", fingerprint=f"fp{i:04d}", service=service, status=status,
                                     ends="2026-11-26T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z")))


async def _post_together(app, requests: list[tuple[str, bytes, str]]) -> list[httpx.Response]:
    """Post every (path, body, secret) at once, on one event loop, the way concurrent senders arrive."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await asyncio.gather(*(c.post(path, content=body, headers={
            "Authorization": f"Bearer {secret}", "Content-Type": "application/json"}) for path, body, secret in requests))


def _batch_sizes(monkeypatch) -> list[int]:
    sizes: list[int] = []
    real = alert_batches._run

    def spy(rt, batch):
        sizes.append(len(batch))
        return real(rt, batch)

    monkeypatch.setattr(alert_batches, "_run", spy)
    return sizes


def test_concurrent_deliveries_share_transactions_and_each_gets_its_own_answer(app, rt, owner, monkeypatch):
    _, _, secret, path = make_hook(rt, owner)
    _, _, other_secret, other_path = make_hook(rt, owner, kind="grafana", name="grafana")
    sizes = _batch_sizes(monkeypatch)
    requests = [(path, _body(i, service=f"svc{i % 3}"), secret) for i in range(12)]
    requests.append((path, _body(99), "wrong-secret"))  # its own 401 among the others
    requests.append((path, _body(0, service="svc0"), secret))  # a replay of the first one, in the same batch
    requests.append((other_path, b"{not json", other_secret))  # another receiver's 400
    answers = asyncio.run(_post_together(app, requests))
    statuses = [r.status_code for r in answers]
    assert statuses == [200] * 12 + [401, 200, 400], [r.text for r in answers]
    bodies = [r.json() for r in answers[:12]]
    assert all(b["status"] == "accepted" and b["created"] == 1 and b["firing"] == 1 for b in bodies)
    assert answers[13].json()["status"] == "duplicate"
    opened = [i for b in bodies for i in b["incidents_opened"]]
    assert len(opened) == 3 == len(set(opened))  # one incident per service, opened by one delivery each
    for b in bodies:  # every other delivery of a service joined the incident its first delivery opened
        assert len(b["incidents_opened"]) + len(b["incidents_updated"]) == 1
    assert counts(rt)["Alert"] == 12 and counts(rt)["WebhookDelivery"] == 12 and counts(rt)["Incident"] == 3
    assert counts(rt)["TimelineEntry"] >= 12
    assert sum(sizes) == len(requests) and max(sizes) > 1, sizes  # deliveries waiting together shared a transaction


def test_a_batch_that_fails_while_writing_is_applied_one_by_one(app, rt, owner, monkeypatch):
    _, _, secret, path = make_hook(rt, owner)
    real = alerts.ingest_many
    calls: list[int] = []

    def flaky(*, session, hook, deliveries, now):
        calls.append(len(deliveries))
        if len(deliveries) > 1:
            raise RuntimeError("a database hiccup in the middle of a batch")
        return real(session=session, hook=hook, deliveries=deliveries, now=now)

    monkeypatch.setattr(alerts, "ingest_many", flaky)
    answers = asyncio.run(_post_together(app, [(path, _body(i), secret) for i in range(6)]))
    assert [r.status_code for r in answers] == [200] * 6
    assert all(r.json()["created"] == 1 for r in answers)
    assert any(n > 1 for n in calls), calls  # a real batch was tried, rolled back, then redone delivery by delivery
    with db.transaction(rt.factory) as s:
        assert len(s.scalars(select(Alert)).all()) == 6
        assert len(s.scalars(select(WebhookDelivery)).all()) == 6  # the rolled-back batch left no delivery behind


def test_one_deliverys_failure_alone_is_only_its_own(app, rt, owner, monkeypatch):
    _, _, secret, path = make_hook(rt, owner)
    real = alerts.ingest_many

    def poisoned(*, session, hook, deliveries, now):
        if any(a.fingerprint == "fp0003" for batch in deliveries for a in batch):
            raise RuntimeError("this one always fails")
        return real(session=session, hook=hook, deliveries=deliveries, now=now)

    monkeypatch.setattr(alerts, "ingest_many", poisoned)
    answers = asyncio.run(_post_together(app, [(path, _body(i), secret) for i in range(6)]))
    assert [r.status_code for r in answers] == [200, 200, 200, 500, 200, 200]
    with db.transaction(rt.factory) as s:
        assert sorted(a.fingerprint for a in s.scalars(select(Alert))) == [
            "fp0000", "fp0001", "fp0002", "fp0004", "fp0005"]


def test_ingest_many_counts_each_delivery_and_credits_the_resolution(rt, owner):
    from blametrail.alerts import parsers
    from blametrail.webhooks.models import Webhook

    hook_id, *_ = make_hook(rt, owner, auto_resolve=True)

    def batch(*alerts_):
        return parsers.parse_alertmanager(alertmanager(*alerts_), default_service=None, default_severity="SEV-3")

    fire = batch(am_alert(fingerprint="a"), am_alert(fingerprint="b"))
    with db.transaction(rt.factory) as s:
        first, = alerts.ingest_many(session=s, hook=s.get(Webhook, hook_id), deliveries=[fire], now=rt.clock.now())
    incident = first.incidents_opened[0]
    resolve_a = batch(am_alert(fingerprint="a", status="resolved", ends="2026-11-26T10:01:00Z"))
    resolve_b = batch(am_alert(fingerprint="b", status="resolved", ends="2026-11-26T10:02:00Z"))
    repeat = batch(am_alert(fingerprint="a", status="resolved", ends="2026-11-26T10:01:00Z"))
    with db.transaction(rt.factory) as s:
        got = alerts.ingest_many(session=s, hook=s.get(Webhook, hook_id), deliveries=[resolve_a, resolve_b, repeat],
                                 now=rt.clock.now())
    assert [(g.received, g.resolved, g.unchanged) for g in got] == [(1, 1, 0), (1, 1, 0), (1, 0, 1)]
    assert got[0].incidents_resolved == [] and got[1].incidents_resolved == [incident]
    with db.transaction(rt.factory) as s:
        entries = s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident,
                                                        TimelineEntry.kind == "alert")).all()
        assert sorted(e.data["status"] for e in entries) == ["firing", "firing", "resolved", "resolved"]


def test_a_lone_delivery_is_answered_without_waiting_for_company(app, rt, owner):
    _, _, secret, path = make_hook(rt, owner)
    answers = asyncio.run(_post_together(app, [(path, _body(1), secret)]))
    assert answers[0].status_code == 200 and answers[0].json()["created"] == 1
    assert not any(b.waiting for b in alert_batches._BY_LOOP.values())


def test_staged_entries_refuse_searchable_kinds(rt, owner):
    from blametrail.incidents import service as incidents

    with db.transaction(rt.factory) as s, pytest.raises(ValueError):
        incidents.stage_entry(session=s, incident=None, kind="update", at=rt.clock.now(), body="x",
                              now=rt.clock.now())
