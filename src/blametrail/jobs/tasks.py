"""Queue tasks: registered on a huey instance against a runtime; they take ids and are idempotent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huey.api import Huey

from blametrail.ai import summary
from blametrail.integrations.base import Limits
from blametrail.postmortems import drafting
from blametrail.postmortems.service import GENERATE_TASK

if TYPE_CHECKING:
    from blametrail.runtime import Runtime


def register(huey: Huey, runtime: Runtime) -> dict:
    """Define the tasks on this huey instance and return them by name."""

    @huey.task(name=GENERATE_TASK)
    def generate_postmortem(pm_id: int) -> str:
        return drafting.run_generation(
            factory=runtime.factory, pm_id=pm_id, engine=runtime.drafting_engine(), clock=runtime.clock.now,
            lookback_minutes=runtime.settings.lookback_minutes, box=runtime.secret_box,
            limits=Limits.from_settings(runtime.settings),
            heartbeat_seconds=runtime.settings.generation_heartbeat_seconds,
        )

    @huey.task(name=summary.TASK)
    def refresh_summary(incident_id: int) -> str:
        return summary.run_refresh(factory=runtime.factory, incident_id=incident_id, clock=runtime.clock.now,
                                   lookback_minutes=runtime.settings.lookback_minutes,
                                   engine=runtime.drafting_engine())

    return {GENERATE_TASK: generate_postmortem, summary.TASK: refresh_summary}
