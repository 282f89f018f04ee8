"""Helpers for the live-summary tests: run the refreshes the test queue holds for later, open incidents."""

from __future__ import annotations

from datetime import datetime

from blametrail import db
from blametrail.summaries import service as summaries

_FAR = datetime(2100, 1, 1)  # huey's schedule runs on real (naive UTC) time, not the test clock


def scheduled(rt) -> list:
    """Return the refresh tasks the queue holds for later (huey's immediate mode keeps delayed tasks scheduled)."""
    return [(task.name, task.args) for task in rt.huey.scheduled()]


def run_scheduled(rt, *, limit: int = 20) -> int:
    """Run every task held for later, as the consumer would once they are due (whatever their delay); return how many."""
    ran = 0
    while ran < limit and (due := rt.huey.read_schedule(_FAR)):
        for task in due:
            rt.huey.execute(task, _FAR)
            ran += 1
    return ran


def open_incident(client, member, title: str = "Checkout down", services=("checkout",), started_at=None) -> int:
    """Open an incident through the API (started now, or at `started_at`); return its id."""
    body = {"title": title, "severity": "SEV-2", "services": list(services)}
    if started_at is not None:
        body["started_at"] = started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = client.post("/api/v1/incidents", json=body, headers=member.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def row(rt, incident_id: int):
    """Return the incident's stored summary row (detached)."""
    with db.transaction(rt.factory) as s:
        return summaries.find(session=s, incident_id=incident_id)
