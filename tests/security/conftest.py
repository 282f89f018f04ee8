"""Security fixtures: one organization seeded through the real API with a row of every kind a route can address."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from tests.conftest import START
from tests.factories import Factory, Member, iso

API = "/api/v1"
PASSWORD = "correct-horse-battery"
FAKE_SERIES = [{"name": "error_rate", "service": "checkout", "unit": "ratio",
                "points": [[iso(START - timedelta(minutes=m)), 0.2 if m < 30 else 0.01] for m in range(90, 0, -5)]}]


@dataclass
class Seeded:
    """The ids of one seeded organization, so generated requests can address rows that exist."""

    owner: Member
    open_incident: int
    resolved_incident: int
    deploy: int
    monitor: int
    connection: int
    spare_token: int
    spare_member: int
    revision: int
    invitation: int = 0
    webhooks: dict[str, dict] = field(default_factory=dict)  # kind -> {"id", "uid", "secret"}

    @property
    def headers(self) -> dict:
        return self.owner.headers


def _ok(r, *codes):
    assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content and "json" in r.headers.get("content-type", "") else None


def seed(client, factory: Factory, *, text: str = "Checkout errors", password: str | None = None,
         plan: str = "pro") -> Seeded:
    """Create an organization with an owner and, through the API, every kind of row: `text` goes in every text field."""
    slug = factory.org(plan=plan)
    owner = factory.member(slug, "owner", password=password)
    h = owner.headers
    deploy = _ok(client.post(f"{API}/deploys", headers=h, json={
        "service": "checkout", "environment": "production", "version": f"v9.1.0 {text}",
        "deployed_at": iso(START - timedelta(minutes=40)), "url": "https://ci.example/run/1",
        "commits": [{"sha": "4e7a91c0ab", "author": f"dev {text}", "message": f"Shrink pool {text}",
                     "files": ["payments/client.py"], "committed_at": iso(START - timedelta(minutes=60))}]}))
    inc = _ok(client.post(f"{API}/incidents", headers=h, json={
        "title": f"Checkout {text}", "description": f"Customers see 500s {text}", "severity": "SEV-2",
        "services": ["checkout"], "started_at": iso(START - timedelta(minutes=30))}))
    _ok(client.post(f"{API}/incidents/{inc['id']}/updates", headers=h, json={"body": f"Rolling back {text}"}))
    _ok(client.post(f"{API}/incidents/{inc['id']}/resolve", headers=h))
    pm = _ok(client.get(f"{API}/incidents/{inc['id']}/postmortem", headers=h))
    _ok(client.patch(f"{API}/incidents/{inc['id']}/postmortem", headers=h, json={
        "version": pm["version"], "sections": {"summary": f"Edited summary {text}"}}))
    open_inc = _ok(client.post(f"{API}/incidents", headers=h, json={
        "title": f"Latency {text}", "services": ["search"], "severity": "SEV-3"}))
    monitor = _ok(client.post(f"{API}/monitors", headers=h, json={
        "name": f"Checkout health {text}", "url": "https://checkout.example/healthz", "service": "checkout",
        "keyword": f"ok {text}"}))
    connection = _ok(client.post(f"{API}/connections", headers=h, json={
        "name": f"Fake metrics {text}", "provider": "fake", "credentials": {"token": "fake-token"},
        "signals": [{"name": "error_rate", "query": f"rate({text})", "services": ["checkout"]}],
        "options": {"series": FAKE_SERIES}}))
    hooks = {}
    for kind in ("alertmanager", "grafana", "generic_alert", "github", "generic_deploy"):
        hook = _ok(client.post(f"{API}/webhooks", headers=h, json={"kind": kind, "name": f"{kind} {text}",
                                                                  "default_service": "checkout"}))
        hooks[kind] = {"id": hook["id"], "uid": hook["url"].rsplit("/", 1)[1], "secret": hook["secret"]}
    token = _ok(client.post(f"{API}/org/tokens", headers=h, json={"name": f"ci {text}"}))
    member = factory.member(slug, "member")
    invitation = _ok(client.post(f"{API}/org/members", headers=h, json={
        "email": f"spare.{slug}@example.test", "name": f"Spare {text}", "role": "member"}))
    revisions = _ok(client.get(f"{API}/incidents/{inc['id']}/postmortem/revisions", headers=h))
    return Seeded(owner=owner, open_incident=open_inc["id"], resolved_incident=inc["id"], deploy=deploy["id"],
                  monitor=monitor["id"], connection=connection["id"], spare_token=token["id"],
                  spare_member=member.actor.user_id, revision=revisions[0]["number"], webhooks=hooks,
                  invitation=invitation["id"])


@pytest.fixture
def seeded(client, factory) -> Seeded:
    return seed(client, factory)
