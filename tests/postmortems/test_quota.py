"""Plans and the monthly quota at their edges: limits, auto-trigger, free plan, regeneration, months, AI off."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from blametrail import db
from blametrail.engines.builtin import BuiltinEngine
from blametrail.errors import UpstreamError
from blametrail.postmortems.models import Postmortem
from blametrail.postmortems.service import GENERATE_TASK

API = "/api/v1"


@pytest.fixture
def queued(rt, monkeypatch) -> list[int]:
    """Record every postmortem id handed to the queue (the job still runs)."""
    calls: list[int] = []
    real = rt.tasks[GENERATE_TASK]

    def recording(pm_id):
        calls.append(pm_id)
        return real(pm_id)

    monkeypatch.setitem(rt.tasks, GENERATE_TASK, recording)
    return calls


def problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    body = r.json()
    assert (body["type"], body["status"]) == (f"/problems/{slug}", status)
    return body


def incident(client, who, title="Checkout errors") -> int:
    r = client.post(f"{API}/incidents", json={"title": title, "services": ["checkout"]}, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def resolve(client, who, iid: int) -> dict:
    r = client.post(f"{API}/incidents/{iid}/resolve", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def usage(client, who) -> dict:
    r = client.get(f"{API}/org/usage", headers=who.headers)
    assert r.status_code == 200
    return r.json()


def set_ai(client, who, enabled: bool) -> None:
    assert client.patch(f"{API}/org/settings", json={"ai_enabled": enabled}, headers=who.headers).status_code == 200


def postmortem_rows(rt, org_slug: str) -> int:
    from blametrail.orgs import service as orgs

    with db.transaction(rt.factory) as s:
        org = orgs.get_org_by_slug(session=s, slug=org_slug)
        return s.scalar(select(func.count()).select_from(Postmortem).where(Postmortem.org_id == org.id))


def resolved_without_postmortem(client, who, n: int) -> list[int]:
    """Resolve n incidents with AI off (so nothing is auto-queued), then turn AI back on."""
    set_ai(client, who, False)
    ids = [incident(client, who, f"incident {k}") for k in range(n)]
    for iid in ids:
        resolve(client, who, iid)
    set_ai(client, who, True)
    return ids


@pytest.fixture
def starter(factory):
    return factory.member(factory.org(plan="starter"), "owner")


def test_usage_endpoint_reports_plan_month_used_limit(client, factory):
    for plan, limit in (("free", 0), ("starter", 5), ("pro", 50)):
        who = factory.member(factory.org(plan=plan), "owner")
        body = usage(client, who)
        assert {k: body[k] for k in ("plan", "month", "used", "limit")} == {
            "plan": plan, "month": "2026-11", "used": 0, "limit": limit}


def test_starter_sixth_new_postmortem_is_402_with_used_limit_and_reset_date(client, starter, rt, queued):
    ids = resolved_without_postmortem(client, starter, 6)
    for n, iid in enumerate(ids[:5], start=1):
        assert client.post(f"{API}/incidents/{iid}/postmortem", headers=starter.headers).status_code == 202
        assert usage(client, starter)["used"] == n
    assert len(queued) == 5

    body = problem(client.post(f"{API}/incidents/{ids[5]}/postmortem", headers=starter.headers), 402, "quota-exceeded")
    assert "5/5" in body["detail"]
    assert "2026-12-01" in body["detail"]
    assert len(queued) == 5
    assert usage(client, starter)["used"] == 5
    problem(client.get(f"{API}/incidents/{ids[5]}/postmortem", headers=starter.headers), 404, "not-found")
    assert postmortem_rows(rt, starter.org_slug) == 5


def test_auto_trigger_at_the_limit_queues_nothing_and_says_why(client, starter, rt, queued):
    for k in range(5):
        resolve(client, starter, incident(client, starter, f"incident {k}"))
    assert len(queued) == 5 and usage(client, starter)["used"] == 5

    iid = incident(client, starter, "one too many")
    resolved = resolve(client, starter, iid)

    assert len(queued) == 5
    assert resolved["postmortem_status"] is None
    reason = resolved["postmortem_skip_reason"]
    assert reason and "5/5" in reason and "2026-12-01" in reason
    got = client.get(f"{API}/incidents/{iid}", headers=starter.headers).json()
    assert (got["postmortem_status"], got["postmortem_skip_reason"]) == (None, reason)
    problem(client.get(f"{API}/incidents/{iid}/postmortem", headers=starter.headers), 404, "not-found")
    assert usage(client, starter)["used"] == 5
    assert postmortem_rows(rt, starter.org_slug) == 5


def test_free_plan_is_not_eligible_and_nothing_is_queued_on_resolve(client, factory, rt, queued):
    who = factory.member(factory.org(plan="free"), "owner")
    iid = incident(client, who)
    resolved = resolve(client, who, iid)
    assert queued == []
    assert resolved["postmortem_status"] is None
    assert "free" in resolved["postmortem_skip_reason"]
    body = problem(client.post(f"{API}/incidents/{iid}/postmortem", headers=who.headers), 403, "plan-not-eligible")
    assert "free" in body["detail"]
    assert queued == []
    problem(client.get(f"{API}/incidents/{iid}/postmortem", headers=who.headers), 404, "not-found")
    assert {k: usage(client, who)[k] for k in ("used", "limit")} == {"used": 0, "limit": 0}
    assert postmortem_rows(rt, who.org_slug) == 0


def test_regeneration_never_consumes_quota_even_at_the_limit(client, starter, clock, queued):
    ids = [incident(client, starter, f"incident {k}") for k in range(5)]
    for iid in ids:
        resolve(client, starter, iid)
    assert usage(client, starter)["used"] == 5
    for _ in range(3):
        clock.advance(seconds=60)
        r = client.post(f"{API}/incidents/{ids[0]}/postmortem/regenerate", json={}, headers=starter.headers)
        assert r.status_code == 202, r.text
        assert usage(client, starter)["used"] == 5
    assert len(queued) == 8
    pm = client.get(f"{API}/incidents/{ids[0]}/postmortem", headers=starter.headers).json()
    assert pm["status"] == "draft"
    revisions = client.get(f"{API}/incidents/{ids[0]}/postmortem/revisions", headers=starter.headers).json()
    assert [r["kind"] for r in revisions] == ["ai"] * 4


class FailingEngine(BuiltinEngine):
    """The built-in engine failing: no fallback is left, so the generation fails."""

    def draft(self, pack, context=None):
        raise UpstreamError("The drafting engine is unreachable (connection refused).")


def test_retrying_a_failed_generation_is_a_regeneration(client, starter, rt, clock, queued):
    for k in range(4):
        resolve(client, starter, incident(client, starter, f"incident {k}"))
    rt.engine_override = FailingEngine()
    iid = incident(client, starter, "the fifth")
    resolve(client, starter, iid)
    rt.engine_override = None
    failed = client.get(f"{API}/incidents/{iid}/postmortem", headers=starter.headers).json()
    assert failed["status"] == "failed"
    assert "connection refused" in failed["error"]
    assert usage(client, starter)["used"] == 5  # the failed one was created, so it counted once

    problem(client.post(f"{API}/incidents/{iid}/postmortem", headers=starter.headers), 409, "invalid-state")
    clock.advance(seconds=60)
    r = client.post(f"{API}/incidents/{iid}/postmortem/regenerate", json={}, headers=starter.headers)
    assert r.status_code == 202, r.text
    assert r.json()["id"] == failed["id"]
    pm = client.get(f"{API}/incidents/{iid}/postmortem", headers=starter.headers).json()
    assert (pm["status"], pm["error"]) == ("draft", None)
    assert usage(client, starter)["used"] == 5
    assert postmortem_rows(rt, starter.org_slug) == 5
    assert queued.count(failed["id"]) == 2


def test_a_new_utc_month_resets_usage(client, starter, clock, queued):
    clock.set(datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC))
    first = [incident(client, starter, f"november {k}") for k in range(5)]
    for iid in first:
        resolve(client, starter, iid)
    late = incident(client, starter, "late november")
    resolved = resolve(client, starter, late)
    assert "5/5" in resolved["postmortem_skip_reason"] and "2026-12-01" in resolved["postmortem_skip_reason"]
    assert {k: usage(client, starter)[k] for k in ("month", "used", "limit")} == {"month": "2026-11", "used": 5, "limit": 5}

    clock.set(datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC))
    assert {k: usage(client, starter)[k] for k in ("month", "used", "limit")} == {"month": "2026-12", "used": 0, "limit": 5}
    assert client.post(f"{API}/incidents/{late}/postmortem", headers=starter.headers).status_code == 202
    assert usage(client, starter)["used"] == 1
    # regenerating November's postmortem in December counts nowhere
    assert client.post(f"{API}/incidents/{first[0]}/postmortem/regenerate", json={},
                       headers=starter.headers).status_code == 202
    assert usage(client, starter)["used"] == 1
    for k in range(4):
        resolve(client, starter, incident(client, starter, f"december {k}"))
    assert usage(client, starter)["used"] == 5
    resolved = resolve(client, starter, incident(client, starter, "december one too many"))
    assert "5/5" in resolved["postmortem_skip_reason"] and "2027-01-01" in resolved["postmortem_skip_reason"]


def test_ai_disabled_refuses_generate_and_regenerate_and_queues_nothing(client, factory, clock, queued, rt):
    who = factory.member(factory.org(plan="pro"), "owner")
    drafted = incident(client, who, "drafted before AI was turned off")
    resolve(client, who, drafted)
    assert len(queued) == 1
    set_ai(client, who, False)
    clock.advance(seconds=60)

    iid = incident(client, who)
    resolved = resolve(client, who, iid)
    assert len(queued) == 1
    assert resolved["postmortem_status"] is None
    assert "AI" in resolved["postmortem_skip_reason"]
    body = problem(client.post(f"{API}/incidents/{iid}/postmortem", headers=who.headers), 403, "ai-disabled")
    assert "AI" in body["detail"]
    before = client.get(f"{API}/incidents/{drafted}/postmortem", headers=who.headers).json()
    problem(client.post(f"{API}/incidents/{drafted}/postmortem/regenerate", json={}, headers=who.headers),
            403, "ai-disabled")
    assert client.get(f"{API}/incidents/{drafted}/postmortem", headers=who.headers).json() == before
    assert len(queued) == 1
    assert usage(client, who)["used"] == 1
    assert postmortem_rows(rt, who.org_slug) == 1

    set_ai(client, who, True)
    assert client.post(f"{API}/incidents/{iid}/postmortem", headers=who.headers).status_code == 202
    assert len(queued) == 2
