"""Health checks: /healthz (the process answers: liveness) and /readyz (its database and queue answer: readiness)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter
from sqlalchemy import text

from blametrail.jobs import queue as jobqueue
from blametrail.monitors import service as monitors
from blametrail.web.deps import RuntimeDep
from blametrail.web.errors import PROBLEM, problem

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
NOT_READY = {"description": "A dependency did not answer (a problem naming it; `checks` says which)",
             "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


@router.get("/healthz")
def healthz():
    """Answer while this process serves requests; touches nothing else, so a restart never fixes a database outage."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: NOT_READY})
def readyz(rt: RuntimeDep):
    """Check the database (SELECT 1) and the queue's storage (Redis or the SQLite file); 503 names what failed."""
    checks = {"database": _check("database", lambda: _select_one(rt.engine)),
              "queue": _check("queue", lambda: jobqueue.ping(rt.huey))}
    failed = [name for name, result in checks.items() if result != "ok"]
    if not failed:
        # why: late checks do not make this process unready (another one would not help it), but operators see them
        return {"status": "ready", "checks": checks, "monitor_schedule": _schedule(rt)}
    return problem(503, "not-ready", "Not ready", f"Unreachable: {', '.join(failed)}.", checks=checks)


def _schedule(rt) -> dict | None:
    try:
        with rt.factory() as session:
            return monitors.schedule_lag(session=session, now=rt.clock.now())
    except Exception:  # why: readiness answers even when this extra fails
        log.warning("readiness: could not read the monitor schedule", exc_info=True)
        return None


def _select_one(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _check(name: str, probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as exc:  # why: any failure means not ready; the detail (hosts, users) goes to the log, not out
        log.warning("readiness: %s unreachable: %s", name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return f"unreachable ({type(exc).__name__})"
    return "ok"
