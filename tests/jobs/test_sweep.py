"""The sweep job: besides re-queuing stuck work, it purges expired Idempotency-Keys and stale login throttles."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blametrail import db
from blametrail.jobs import sweep
from blametrail.orgs.models import (
    IdempotencyRecord,
    Invitation,
    LoginAttempt,
    LoginThrottle,
)

INCIDENT = {"title": "Checkout is down", "severity": "SEV-2", "services": ["checkout"]}


def add_throttle(rt, subject: str, *, updated_ago: timedelta, locked_for: timedelta | None = None) -> None:
    """Leave a subject's failed-login row (with one attempt) as logins at that time would have."""
    now = rt.clock.now()
    with db.transaction(rt.factory) as s:
        row = LoginThrottle(subject=subject, updated_at=now - updated_ago,
                            locked_until=now + locked_for if locked_for else None)
        s.add(row)
        s.flush()
        s.add(LoginAttempt(throttle_id=row.id, at=now - updated_ago))


def test_the_sweep_purges_expired_keys_and_stale_throttles_and_keeps_live_ones(client, rt, clock, factory,
                                                                               monkeypatch):
    monkeypatch.setattr(sweep, "PURGE_BATCH", 1)  # two expired keys: the purge goes on past a full batch
    owner = factory.member(factory.org())
    ttl_hours = rt.settings.idempotency_ttl_hours
    horizon = timedelta(seconds=rt.settings.login_window_seconds + rt.settings.login_lockout_seconds)
    for key in ("old-1", "old-2"):
        assert client.post("/api/v1/incidents", json=INCIDENT,
                           headers={**owner.headers, "Idempotency-Key": key}).status_code == 201
    clock.advance(hours=ttl_hours - 1)
    assert client.post("/api/v1/incidents", json=INCIDENT,
                       headers={**owner.headers, "Idempotency-Key": "fresh"}).status_code == 201
    clock.advance(hours=1)  # the old keys reach the TTL; nothing else runs that would purge them
    add_throttle(rt, "ip:192.0.2.1", updated_ago=horizon + timedelta(seconds=1))
    add_throttle(rt, "ip:192.0.2.2", updated_ago=timedelta(seconds=30))
    add_throttle(rt, "ip:192.0.2.3", updated_ago=horizon * 2, locked_for=timedelta(minutes=5))  # still locked

    assert rt.sweep_once() == []

    with db.transaction(rt.factory) as s:
        assert list(s.scalars(select(IdempotencyRecord.key))) == ["fresh"]
        assert sorted(s.scalars(select(LoginThrottle.subject))) == ["ip:192.0.2.2", "ip:192.0.2.3"]
        assert len(list(s.scalars(select(LoginAttempt.id)))) == 2
    assert rt.purge_expired() == {"idempotency_keys": 0, "login_throttles": 0, "invitations": 0, "vendor_events": 0}
    replay = client.post("/api/v1/incidents", json=INCIDENT, headers={**owner.headers, "Idempotency-Key": "fresh"})
    assert replay.headers["idempotent-replayed"] == "true"


def test_the_sweep_purges_invitations_a_month_after_they_expired(client, rt, clock, factory):
    admin = factory.member(factory.org(), "admin")
    for email in ("old@example.test", "newer@example.test"):
        assert client.post("/api/v1/org/members", json={"email": email}, headers=admin.headers).status_code == 201
        clock.advance(days=10)
    clock.advance(days=rt.settings.invitation_ttl_hours / 24 + 20)  # expired 40 and exactly 30 days ago: one is past
    assert rt.purge_expired()["invitations"] == 1
    with db.transaction(rt.factory) as s:
        assert list(s.scalars(select(Invitation.email))) == ["newer@example.test"]
    listed = client.get("/api/v1/org/invitations", headers=admin.headers).json()
    assert [(i["email"], i["status"]) for i in listed] == [("newer@example.test", "expired")]


def test_the_sweep_forgets_vendor_event_ids_past_their_retention(client, rt, clock, factory):
    from blametrail.vendors import service as vendors

    org_id = factory.member(factory.org(), "owner").actor.org_id
    with db.transaction(rt.factory) as s:
        for n in range(3):
            assert vendors.first_time(session=s, org_id=org_id, kind="slack", event_id=f"Ev{n}", now=clock.now())
    clock.advance(days=1)
    with db.transaction(rt.factory) as s:
        vendors.first_time(session=s, org_id=org_id, kind="slack", event_id="recent", now=clock.now())
    clock.advance(seconds=vendors.EVENT_RETENTION.total_seconds() - 3600)  # the first three are past it
    assert rt.purge_expired()["vendor_events"] == 3
    with db.transaction(rt.factory) as s:
        assert vendors.first_time(session=s, org_id=org_id, kind="slack", event_id="Ev0", now=clock.now())
        assert not vendors.first_time(session=s, org_id=org_id, kind="slack", event_id="recent", now=clock.now())
