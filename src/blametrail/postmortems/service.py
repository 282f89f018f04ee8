"""Postmortems: create and queue, regenerate, edit, publish and republish, published versions, revisions; claim and
finish generations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.actions import service as actions
from blametrail.engines.sections import SECTION_TITLES, Sections, SectionsPatch, dump
from blametrail.errors import (
    AIDisabled,
    DomainError,
    InvalidState,
    NotFound,
    RateLimited,
    ValidationFailed,
    VersionConflict,
)
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.orgs import service as orgs
from blametrail.orgs import templates
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.outbound import service as outbound
from blametrail.postmortems import lifecycle, reviews
from blametrail.postmortems.models import GenerationRun, Postmortem, Revision

GENERATE_TASK = "generate_postmortem"
NOTICE_TASK = "postmortem_notice"  # (pm_id, "drafted" | "published"): tells the team's chat channel (jobs/slack.py)
# the progress of a running generation, in order (the card shows the current one and the time since started_at)
STEPS = ("gathering", "asking_model", "checking_citations", "storing")


def find(*, session: Session, org_id: int, incident_id: int) -> Postmortem | None:
    """Return the incident's postmortem, or None."""
    return session.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id, Postmortem.org_id == org_id))


def statuses(*, session: Session, org_id: int, incident_ids: list[int]) -> dict[int, str]:
    """Return the postmortem status of each of these incidents that has one (one query for a whole page)."""
    if not incident_ids:
        return {}
    rows = session.execute(select(Postmortem.incident_id, Postmortem.status)
                           .where(Postmortem.org_id == org_id, Postmortem.incident_id.in_(incident_ids)))
    return {incident_id: status for incident_id, status in rows}


def get_or_404(*, session: Session, org_id: int, incident_id: int) -> Postmortem:
    """Return the incident's postmortem or raise NotFound."""
    incidents.get_or_404(session=session, org_id=org_id, incident_id=incident_id)
    pm = find(session=session, org_id=org_id, incident_id=incident_id)
    if pm is None:
        raise NotFound(f"Incident {incident_id} has no postmortem yet.")
    return pm


def _next_revision_number(session: Session, pm_id: int) -> int:
    return (session.scalar(select(func.max(Revision.number)).where(Revision.postmortem_id == pm_id)) or 0) + 1


def _add_revision(session: Session, pm: Postmortem, *, kind: str, author: str | None, author_user_id: int | None,
                  now: datetime) -> Revision:
    rev = Revision(org_id=pm.org_id, postmortem_id=pm.id, number=_next_revision_number(session, pm.id), kind=kind,
                   status=pm.status, sections=pm.sections or {}, engine=pm.engine, author=author,
                   author_user_id=author_user_id, created_at=now, version=pm.version)
    session.add(rev)
    session.flush()
    return rev


def check_can_create(*, session: Session, incident: Incident, now: datetime) -> None:
    """Raise the reason a new postmortem cannot be created for this incident, if any (read-only)."""
    org = orgs.get_org(session=session, org_id=incident.org_id)
    if not org.ai_enabled:
        raise AIDisabled("AI features are turned off for this organization (Organization → Settings).")
    if incident.status != "resolved":
        raise InvalidState("Resolve the incident first: postmortems are drafted for resolved incidents.")
    if find(session=session, org_id=incident.org_id, incident_id=incident.id) is not None:
        raise InvalidState("This incident already has a postmortem; regenerate it instead.")
    orgs.check_quota(org=org, used=orgs.usage(session=session, org=org, now=now)["used"], now=now)


def _create(*, session: Session, incident: Incident, user_id: int | None, now: datetime) -> Postmortem:
    check_can_create(session=session, incident=incident, now=now)
    org = orgs.get_org(session=session, org_id=incident.org_id)
    orgs.consume_quota(session=session, org=org, now=now)
    pm = Postmortem(org_id=incident.org_id, incident_id=incident.id, status="queued", version=1, sections=None,
                    original_sections=None, edited_keys=[], generation_requested_at=now, queued_at=now,
                    created_by_user_id=user_id, created_at=now, updated_at=now)
    session.add(pm)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # why: a parallel request created it first (PostgreSQL)
        raise InvalidState("This incident already has a postmortem; regenerate it instead.") from exc
    db.defer(session, GENERATE_TASK, pm.id)
    return pm


def request_generation(*, session: Session, actor: Actor, incident_id: int, now: datetime) -> Postmortem:
    """Create the incident's postmortem and queue its first generation (counts against the quota)."""
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.POSTMORTEM_WRITE)
    return _create(session=session, incident=incident, user_id=actor.user_id, now=now)


def auto_trigger(*, session: Session, incident: Incident, now: datetime) -> Postmortem | None:
    """Queue a postmortem for a freshly resolved incident, or record why none was queued."""
    try:
        with session.begin_nested():
            pm = _create(session=session, incident=incident, user_id=None, now=now)
    except DomainError as exc:
        incident.postmortem_skip_reason = exc.detail
        session.flush()
        return None
    incident.postmortem_skip_reason = None
    return pm


def resolve_incident(
    *, session: Session, incident: Incident, now: datetime, resolved_at: datetime | None, by_label: str,
    by_user_id: int | None,
) -> Incident:
    """Resolve an incident (a person or a monitor/alert source) and auto-trigger its postmortem."""
    incidents.resolve(session=session, incident=incident, now=now, resolved_at=resolved_at, by_label=by_label,
                      by_user_id=by_user_id)
    auto_trigger(session=session, incident=incident, now=now)
    return incident


def regenerate(
    *, session: Session, actor: Actor, incident_id: int, overwrite_edited: bool, now: datetime, interval_seconds: int,
) -> Postmortem:
    """Queue another generation: before publishing, at most once per interval, never counted against quota."""
    pm = get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.POSTMORTEM_WRITE)
    org = orgs.get_org(session=session, org_id=actor.org_id)
    if not org.ai_enabled:
        raise AIDisabled("AI features are turned off for this organization (Organization → Settings).")
    if pm.status == "published":
        raise InvalidState("Published postmortems cannot be regenerated; edit them instead.")
    threshold = now - timedelta(seconds=interval_seconds)
    result = session.execute(
        update(Postmortem)
        .where(Postmortem.id == pm.id, Postmortem.status.in_(lifecycle.REGENERATABLE),
               Postmortem.generation_requested_at <= threshold)
        .values(status="queued", generation_requested_at=now, queued_at=now, claimed_at=None, error=None,
                overwrite_edited=bool(overwrite_edited), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(pm)
    if result.rowcount != 1:
        wait = pm.generation_requested_at + timedelta(seconds=interval_seconds) - now
        if wait.total_seconds() > 0:
            seconds = max(1, int(wait.total_seconds() + 0.999))
            raise RateLimited(f"Regeneration is limited to once per {interval_seconds} seconds; try again in {seconds} s.",
                              retry_after=seconds)
        raise InvalidState(f"The postmortem is {pm.status}; wait for the current generation to finish.")
    db.defer(session, GENERATE_TASK, pm.id)
    return pm


EDIT_ATTEMPTS = 3  # merges retried when another save lands between reading the current text and writing it


def _normalized(sections: dict | None) -> dict:
    """Return sections in their stored JSON shape, so equal content compares equal (stored text as-is if invalid)."""
    try:
        return dump(Sections.model_validate(sections or {}))
    except ValidationError:
        return dict(sections or {})


def _base_sections(session: Session, pm: Postmortem, version: int) -> dict | None:
    """Return the sections of the postmortem at `version` (the latest revision that produced it), or None."""
    if version == pm.version:
        return pm.sections
    return session.scalar(select(Revision.sections).where(Revision.postmortem_id == pm.id, Revision.version == version)
                          .order_by(Revision.number.desc()).limit(1))


def sections_at(*, session: Session, pm: Postmortem, version: int) -> dict | None:
    """Return the postmortem's sections as of `version` (what an editor loaded), or None when unknown."""
    return _base_sections(session, pm, version)


def edit(*, session: Session, actor: Actor, incident_id: int, version: int, patch: SectionsPatch, now: datetime) -> Postmortem:
    """Save a person's changes to some sections, merged per section onto the current text.

    `version` is the version the person started from (the base). Sections only they changed since the base are
    saved onto the current text, even when someone else saved other sections meanwhile; a section both changed,
    to different text, is a VersionConflict naming those sections (`sections` in the problem), and nothing is saved.
    """
    pm = get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.POSTMORTEM_WRITE)
    changes = patch.model_dump(exclude_unset=True, mode="json")
    if not changes:
        raise ValidationFailed("Give at least one section to change.", [{"loc": ["sections"], "msg": "empty"}])
    if pm.sections is None:
        raise InvalidState("There is no draft to edit yet; wait for the generation to finish.")
    if changes.get("extra"):  # why: only the sections the organization's template defines can be written
        changes["extra"] = templates.validate_extra(session, actor.org_id, changes["extra"])
    if not 1 <= version < db.MAX_INT:  # why: PostgreSQL cannot even compare a larger number with the INTEGER column
        raise VersionConflict(f"There is no version {version} (current version {pm.version}); reload and edit again.",
                              current_version=pm.version)
    base_sections = _base_sections(session, pm, version)
    if base_sections is None:  # a future version, or one from before versions were recorded on revisions
        raise VersionConflict(
            f"Someone else saved this postmortem (current version {pm.version}, yours {version}); review their changes.",
            current_version=pm.version)
    base = _normalized(base_sections)
    try:
        proposed = dump(Sections.model_validate({**base, **changes}))
    except ValidationError as exc:
        raise ValidationFailed("The sections are invalid.", [
            {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]) from exc
    mine = {key for key in changes if proposed.get(key) != base.get(key)}
    for _ in range(EDIT_ATTEMPTS):
        onto = pm.version
        current = _normalized(pm.sections)
        theirs = {key for key in set(base) | set(current) if base.get(key) != current.get(key)}
        conflicts = sorted(key for key in mine & theirs if proposed.get(key) != current.get(key))
        if conflicts:
            raise VersionConflict(
                f"Someone else changed {', '.join(SECTION_TITLES.get(k, k) for k in conflicts)} since your version {version} (current version "
                f"{onto}); review their changes.", current_version=onto, sections=conflicts)
        try:
            merged = dump(Sections.model_validate({**current, **{key: proposed[key] for key in mine}}))
        except ValidationError as exc:
            raise ValidationFailed("The sections are invalid.", [
                {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]) from exc
        result = session.execute(
            update(Postmortem)
            .where(Postmortem.id == pm.id, Postmortem.version == onto)
            .values(sections=merged, version=onto + 1, status=lifecycle.status_after_edit(pm.status),
                    edited_keys=sorted(set(pm.edited_keys or []) | mine), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.refresh(pm)
        if result.rowcount == 1:
            _add_revision(session, pm, kind="edit", author=actor.label, author_user_id=actor.user_id, now=now)
            _emit(session, pm, "postmortem.edited", now, by=actor.label, sections=sorted(mine))
            return pm
        if pm.sections is None:  # why: a regeneration without keeping edits cleared it meanwhile
            break
    raise VersionConflict(
        f"Someone else saved this postmortem (current version {pm.version}, yours {version}); review their changes.",
        current_version=pm.version)


def publish(*, session: Session, actor: Actor, incident_id: int, now: datetime) -> Postmortem:
    """Publish the postmortem (owner/admin), freezing its current sections as a new published version.

    A published postmortem is republished only when its sections changed since the last published version.
    """
    pm = get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.PUBLISH)
    reviews.check_publish(session=session, pm=pm)
    if pm.status == "published":
        return _republish(session=session, actor=actor, pm=pm, now=now)
    result = session.execute(
        update(Postmortem)
        .where(Postmortem.id == pm.id, Postmortem.status.in_(lifecycle.PUBLISHABLE))
        .values(status="published", published_at=now, published_by=actor.label, published_by_user_id=actor.user_id,
                updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(pm)
    if result.rowcount != 1:
        if pm.status == "published":
            raise InvalidState("The postmortem is already published; someone published it a moment ago.")
        raise InvalidState(f"A {pm.status} postmortem cannot be published; it needs a draft first.")
    _add_revision(session, pm, kind="publish", author=actor.label, author_user_id=actor.user_id, now=now)
    _after_publish(session, pm, actor, now)
    return pm


def _emit(session: Session, pm: Postmortem, event: str, now: datetime, **extra) -> None:
    """Tell the organization's outbound webhooks about the postmortem (after the commit)."""
    outbound.emit(session=session, org_id=pm.org_id, event_type=event, now=now, data={
        "incident_id": pm.incident_id, "postmortem_id": pm.id, "status": pm.status, "version": pm.version, **extra})


def _after_publish(session: Session, pm: Postmortem, actor: Actor, now: datetime) -> None:
    """Make the published text's action items tracked records (once each; a republish adds only new ones), and
    queue the notice to the team's channel."""
    actions.materialize(session=session, org_id=pm.org_id, incident_id=pm.incident_id, sections=pm.sections,
                        actor_label=actor.label, now=now)
    db.defer(session, NOTICE_TASK, pm.id, "published")
    _emit(session, pm, "postmortem.published", now, by=actor.label)


def _republish(*, session: Session, actor: Actor, pm: Postmortem, now: datetime) -> Postmortem:
    # why: the row lock makes a concurrent edit or republish wait, so the comparison below sees the committed text
    # and two owners pressing Republish at once make one new version, not two identical ones (SQLite: BEGIN IMMEDIATE)
    pm = session.get(Postmortem, pm.id, populate_existing=True, with_for_update=True)
    versions = _publish_revisions(session, pm)
    last = versions[-1] if versions else None
    if not lifecycle.changed_since_publish(pm.sections, last.sections if last else None):
        raise InvalidState(f"The postmortem is already published: nothing changed since version {len(versions)}.")
    pm.published_at, pm.published_by, pm.published_by_user_id, pm.updated_at = now, actor.label, actor.user_id, now
    session.flush()
    _add_revision(session, pm, kind="publish", author=actor.label, author_user_id=actor.user_id, now=now)
    _after_publish(session, pm, actor, now)
    return pm


@dataclass(frozen=True)
class PublishedVersion:
    """One published version: its number (the ordinal of its publish revision), the latest number, the revision."""

    version: int
    latest: int
    revision: Revision


@dataclass(frozen=True)
class Publication:
    """Where the current text stands against the last published version (for reads, exports and printing)."""

    latest: PublishedVersion | None  # None before the first publish
    edited_by: str | None = None  # the last person to edit after that publish, while the text differs from it
    edited_at: datetime | None = None

    @property
    def edited_after_publish(self) -> bool:
        return self.edited_at is not None


def _publish_revisions(session: Session, pm: Postmortem) -> list[Revision]:
    return list(session.scalars(select(Revision).where(Revision.postmortem_id == pm.id, Revision.kind == "publish")
                                .order_by(Revision.number)))


def published_version(*, session: Session, pm: Postmortem, version: int | None = None) -> PublishedVersion:
    """Return a published version (the latest unless `version` is given) or raise NotFound."""
    versions = _publish_revisions(session, pm)
    if not versions:
        raise NotFound(f"Incident {pm.incident_id}'s postmortem has not been published yet.")
    number = len(versions) if version is None else version
    if not 1 <= number <= len(versions):
        raise NotFound(f"Published version {version} not found; the latest is version {len(versions)}.")
    return PublishedVersion(version=number, latest=len(versions), revision=versions[number - 1])


def publication(*, session: Session, pm: Postmortem) -> Publication:
    """Return the last published version and, when the text changed since, who edited it last and when."""
    if pm.published_at is None:  # why: every read (card polls included) asks; a never-published one needs no query
        return Publication(latest=None)
    published = (Revision.postmortem_id == pm.id, Revision.kind == "publish")
    count = session.scalar(select(func.count()).select_from(Revision).where(*published)) or 0
    last = session.scalar(select(Revision).where(*published).order_by(Revision.number.desc()).limit(1))
    if last is None:
        return Publication(latest=None)
    latest = PublishedVersion(version=count, latest=count, revision=last)
    if not lifecycle.changed_since_publish(pm.sections, last.sections):
        return Publication(latest=latest)  # why: edits that were undone again leave nothing to republish
    edit_rev = session.scalar(select(Revision).where(Revision.postmortem_id == pm.id, Revision.kind == "edit",
                                                     Revision.number > last.number)
                              .order_by(Revision.number.desc()).limit(1))
    if edit_rev is None:
        return Publication(latest=latest)
    return Publication(latest=latest, edited_by=edit_rev.author, edited_at=edit_rev.created_at)


def list_revisions(*, session: Session, pm: Postmortem) -> list[Revision]:
    """Return every revision, oldest first."""
    return list(session.scalars(select(Revision).where(Revision.postmortem_id == pm.id).order_by(Revision.number)))


def get_revision(*, session: Session, pm: Postmortem, number: int) -> Revision:
    """Return one revision or raise NotFound."""
    rev = session.scalar(select(Revision).where(Revision.postmortem_id == pm.id, Revision.number == number))
    if rev is None:
        raise NotFound(f"Revision {number} not found.")
    return rev


def runs(*, session: Session, pm: Postmortem) -> list[GenerationRun]:
    """Return the generation runs, newest first."""
    return list(session.scalars(select(GenerationRun).where(GenerationRun.postmortem_id == pm.id)
                                .order_by(GenerationRun.id.desc())))


# --- used by the queue worker -------------------------------------------------------------------

def claim(*, session: Session, pm_id: int, engine: str, worker: str, now: datetime) -> tuple[Postmortem, GenerationRun] | None:
    """Move a queued postmortem to generating (once: duplicates get None) and open its run record."""
    result = session.execute(
        update(Postmortem).where(Postmortem.id == pm_id, Postmortem.status == "queued")
        .values(status="generating", attempt=Postmortem.attempt + 1, claimed_at=now, heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    pm = session.get(Postmortem, pm_id, populate_existing=True)
    engine = db.fit(GenerationRun.engine, engine)  # why: "provider:" + a 200-character model name is longer
    run = GenerationRun(org_id=pm.org_id, postmortem_id=pm.id, attempt=pm.attempt, engine=engine, status="running",
                        started_at=now, worker=worker, step=STEPS[0], step_at=now)
    session.add(run)
    session.flush()
    return pm, run


def heartbeat(*, session: Session, pm_id: int, attempt: int, now: datetime) -> bool:
    """Record that this attempt is still being worked on; False once it was superseded or ended."""
    result = session.execute(
        update(Postmortem).where(Postmortem.id == pm_id, Postmortem.status == "generating", Postmortem.attempt == attempt)
        .values(heartbeat_at=now).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def set_step(*, session: Session, pm_id: int, attempt: int, run_id: int, step: str, now: datetime) -> bool:
    """Record the step a running generation is at; False once the run ended or a newer attempt superseded it."""
    if step not in STEPS:
        raise ValueError(f"unknown generation step {step!r}; one of {', '.join(STEPS)}")
    result = session.execute(
        update(GenerationRun).where(GenerationRun.id == run_id, GenerationRun.postmortem_id == pm_id,
                                    GenerationRun.attempt == attempt, GenerationRun.status == "running")
        .values(step=step, step_at=now).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _current_attempt(session: Session, pm_id: int, attempt: int) -> Postmortem | None:
    pm = session.get(Postmortem, pm_id, populate_existing=True, with_for_update=True)
    if pm is None or pm.status != "generating" or pm.attempt != attempt:
        return None
    return pm


def _close_run(session: Session, run_id: int, *, status: str, error: str | None, evidence: dict | None, now: datetime) -> None:
    run = session.get(GenerationRun, run_id)
    if run is None:
        return
    run.status, run.error, run.finished_at = status, error, now
    run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
    if evidence is not None:
        run.evidence = evidence


def finish(
    *, session: Session, pm_id: int, attempt: int, run_id: int, draft: dict, engine: str, error: str | None,
    evidence: dict, now: datetime, fallback: bool = False,
) -> bool:
    """Store a finished draft (keeping edited sections unless overwriting); False if this attempt was superseded.

    `fallback` says the built-in draft replaced a model draft that failed: the run is recorded as `fallback`.
    """
    pm = _current_attempt(session, pm_id, attempt)
    if pm is None:
        _close_run(session, run_id, status="abandoned", error="superseded by a newer attempt", evidence=evidence, now=now)
        return False
    merged, kept = lifecycle.merge_draft(draft, pm.sections, list(pm.edited_keys or []), pm.overwrite_edited)
    pm.sections, pm.original_sections, pm.edited_keys = merged, draft, kept
    pm.status = lifecycle.status_after_draft(kept)
    pm.version += 1
    engine = db.fit(Postmortem.engine, engine)
    pm.engine, pm.error, pm.generated_at, pm.updated_at = engine, error, now, now
    pm.overwrite_edited, pm.claimed_at, pm.heartbeat_at = False, None, None
    session.flush()
    _add_revision(session, pm, kind="ai", author=engine, author_user_id=None, now=now)
    _close_run(session, run_id, status="fallback" if fallback else "succeeded", error=error, evidence=evidence, now=now)
    db.defer(session, NOTICE_TASK, pm.id, "drafted")
    _emit(session, pm, "postmortem.drafted", now, engine=engine, fallback=fallback)
    return True


def fail(*, session: Session, pm_id: int, attempt: int, run_id: int, error: str, evidence: dict | None, now: datetime) -> bool:
    """Mark the generation failed with a reason a person can act on."""
    pm = _current_attempt(session, pm_id, attempt)
    _close_run(session, run_id, status="failed" if pm else "abandoned", error=error, evidence=evidence, now=now)
    if pm is None:
        return False
    pm.status, pm.error, pm.updated_at, pm.claimed_at, pm.heartbeat_at = "failed", error, now, None, None
    session.flush()
    return True


def sweep(*, session: Session, now: datetime, stale_generating_seconds: int, stale_queued_seconds: int) -> list[int]:
    """Re-queue generations whose worker went silent and queued rows nobody picked up; return ids to enqueue."""
    dead_before = now - timedelta(seconds=stale_generating_seconds)
    silent = func.coalesce(Postmortem.heartbeat_at, Postmortem.claimed_at) < dead_before
    # why: one UPDATE … RETURNING, so a heartbeat landing between a SELECT and the UPDATE cannot get a live run
    # abandoned; only the rows this statement changed are re-queued and have their runs closed
    dead = list(session.execute(
        update(Postmortem).where(Postmortem.status == "generating", silent)
        .values(status="queued", claimed_at=None, heartbeat_at=None, queued_at=now)
        .returning(Postmortem.id).execution_options(synchronize_session=False)).scalars())
    if dead:
        session.execute(update(GenerationRun).where(GenerationRun.postmortem_id.in_(dead), GenerationRun.status == "running")
                        .values(status="abandoned", error="worker stopped sending heartbeats before finishing",
                                finished_at=now)
                        .execution_options(synchronize_session=False))
    old_before = now - timedelta(seconds=stale_queued_seconds)
    stuck = list(session.execute(
        update(Postmortem).where(Postmortem.status == "queued", Postmortem.queued_at < old_before)
        .values(queued_at=now).returning(Postmortem.id).execution_options(synchronize_session=False)).scalars())
    session.flush()
    return sorted(set(dead) | set(stuck))
