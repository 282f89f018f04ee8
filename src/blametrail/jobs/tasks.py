"""Queue tasks: registered on a huey instance with what they need; they take ids and are idempotent."""

from __future__ import annotations

from typing import Protocol

from huey.api import Huey
from sqlalchemy.orm import Session, sessionmaker

from blametrail import netguard
from blametrail.clock import Clock
from blametrail.crypto import SecretBox
from blametrail.engines.base import Engine
from blametrail.integrations.base import Limits
from blametrail.jobs import generation
from blametrail.jobs import outbound as outbound_job
from blametrail.jobs import slack as slack_job
from blametrail.jobs import summary as summary_job
from blametrail.jobs import trackers as tracker_jobs
from blametrail.outbound.service import DELIVER_TASK
from blametrail.postmortems.service import GENERATE_TASK, NOTICE_TASK
from blametrail.settings import Settings
from blametrail.summaries.service import TASK as SUMMARY_TASK
from blametrail.vendors.slack_channel import IMPORT_TASK as SLACK_IMPORT_TASK
from blametrail.vendors.tracker_sync import PUSH_TASK as TRACKER_PUSH_TASK
from blametrail.vendors.tracker_sync import RECONCILE_TASK as TRACKER_RECONCILE_TASK


class JobDeps(Protocol):
    """What the jobs need from the process (the runtime); read when a job runs, so a swapped clock or settings count."""

    factory: sessionmaker[Session]
    settings: Settings
    clock: Clock

    @property
    def secret_box(self) -> SecretBox: ...

    def engine_for_org(self, session: Session, org_id: int) -> Engine: ...


def register(huey: Huey, deps: JobDeps) -> dict:
    """Define the tasks on this huey instance and return them by name."""

    @huey.task(name=GENERATE_TASK)
    def generate_postmortem(pm_id: int) -> str:
        return generation.run_generation(
            factory=deps.factory, pm_id=pm_id, choose_engine=deps.engine_for_org, clock=deps.clock.now,
            lookback_minutes=deps.settings.lookback_minutes, box=deps.secret_box,
            limits=Limits.from_settings(deps.settings), heartbeat_seconds=deps.settings.generation_heartbeat_seconds,
        )

    @huey.task(name=SUMMARY_TASK)
    def refresh_summary(incident_id: int) -> str:
        # why: the organization's engine, as for drafts (chosen per organization inside the job)
        return summary_job.run_refresh(
            factory=deps.factory, incident_id=incident_id, clock=deps.clock.now,
            lookback_minutes=deps.settings.lookback_minutes, choose_engine=deps.engine_for_org, later=refresh_later,
            box=deps.secret_box, limits=Limits.from_settings(deps.settings),
            min_interval_seconds=deps.settings.summary_min_interval_seconds,
            observation_ttl_seconds=deps.settings.summary_observation_ttl_seconds,
        )

    def refresh_later(incident_id: int, delay: float) -> None:
        """Run the summary refresh again after `delay` seconds (huey's schedule; at once when there is no delay)."""
        if delay > 0:
            refresh_summary.schedule((incident_id,), delay=delay)
        else:
            refresh_summary(incident_id)

    @huey.task(name=SLACK_IMPORT_TASK)
    def import_slack_channel(incident_id: int) -> str:
        return slack_job.run_import(
            factory=deps.factory, incident_id=incident_id, box=deps.secret_box,
            policy=netguard.policy_from(deps.settings), timeout=deps.settings.vendor_timeout_seconds,
            lookback_minutes=deps.settings.lookback_minutes, clock=deps.clock.now)

    @huey.task(name=NOTICE_TASK)
    def post_notice(pm_id: int, event: str) -> str:
        return slack_job.run_notice(
            factory=deps.factory, pm_id=pm_id, event=event, box=deps.secret_box,
            policy=netguard.policy_from(deps.settings), timeout=deps.settings.vendor_timeout_seconds,
            public_url=deps.settings.public_url, clock=deps.clock.now)

    @huey.task(name=TRACKER_PUSH_TASK)
    def push_tracker_status(item_id: int) -> str:
        return tracker_jobs.run_push(factory=deps.factory, item_id=item_id, box=deps.secret_box,
                                     policy=netguard.policy_from(deps.settings),
                                     timeout=deps.settings.vendor_timeout_seconds, clock=deps.clock.now)

    @huey.task(name=TRACKER_RECONCILE_TASK)
    def reconcile_trackers() -> dict:
        return tracker_jobs.run_reconcile(factory=deps.factory, box=deps.secret_box,
                                          policy=netguard.policy_from(deps.settings),
                                          timeout=deps.settings.vendor_timeout_seconds, clock=deps.clock.now)

    @huey.task(name=DELIVER_TASK)
    def deliver_outbound(delivery_id: int) -> str:
        return outbound_job.send_once(factory=deps.factory, delivery_id=delivery_id, box=deps.secret_box,
                                      policy=netguard.policy_from(deps.settings),
                                      timeout=deps.settings.vendor_timeout_seconds, clock=deps.clock.now)

    return {GENERATE_TASK: generate_postmortem, SUMMARY_TASK: refresh_summary, SLACK_IMPORT_TASK: import_slack_channel,
            NOTICE_TASK: post_notice, TRACKER_PUSH_TASK: push_tracker_status,
            TRACKER_RECONCILE_TASK: reconcile_trackers, DELIVER_TASK: deliver_outbound}
