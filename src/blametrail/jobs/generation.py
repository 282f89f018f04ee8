"""The generation job: claim → choose the organization's engine → gather evidence → draft → ground → store.

Each step's transaction is short and owned here; evidence is fetched from connectors and the engine is called
outside any transaction, while a heartbeat thread tells the sweep the claim is alive. The run records the step it
is at (gathering → asking_model → checking_citations → storing) for the card; a built-in draft that replaced a
failed model draft is recorded as `fallback`, with its reason, and logged once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.actions import service as actions
from blametrail.analysis import similarity
from blametrail.analysis.evidence import EvidencePack
from blametrail.crypto import SecretBox
from blametrail.engines.base import NO_CONTEXT, Audit, DraftContext, Engine, EngineFailed, keep_template_extra
from blametrail.engines.builtin import BuiltinEngine
from blametrail.engines.sections import Sections, dump
from blametrail.errors import UpstreamError
from blametrail.evidence import observe as evidence_observe
from blametrail.evidence.pack import build_pack
from blametrail.incidents.models import Incident
from blametrail.integrations.base import Limits
from blametrail.learning import similar
from blametrail.orgs import templates
from blametrail.postmortems import service
from blametrail.postmortems.models import GenerationRun, Postmortem

log = logging.getLogger(__name__)

EngineChoice = Callable[[Session, int], Engine]  # (session, org_id) → the engine that organization drafts with


def _worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


@dataclass(frozen=True)
class Drafted:
    """What drafting produced: the sections, which engine wrote them, why the model's draft was replaced, the audit."""

    sections: dict
    engine: str
    error: str | None
    audit: Audit | None
    fallback: bool = False  # the built-in draft replaced a model draft that failed


def draft_with_fallback(engine: Engine, pack: EvidencePack, context: DraftContext = NO_CONTEXT,
                        on_step: Callable[[str], None] | None = None) -> Drafted:
    """Run the engine; if a provider fails, use the built-in engine and say why (one warning line in the log)."""
    try:
        draft = engine.draft(pack, replace(context, on_step=on_step) if on_step else context)
        return Drafted(dump(Sections.model_validate(draft.sections)), engine.label, None, draft.audit)
    except UpstreamError as exc:
        if isinstance(engine, BuiltinEngine):
            raise
        log.warning("incident %s: the %s engine failed, the built-in draft is stored instead: %s",
                    pack.incident.id, engine.label, " ".join(str(exc).split()))
        reason = f"{exc} This is the built-in engine's draft instead (the {engine.label} engine failed)."
        audit = exc.audit if isinstance(exc, EngineFailed) else None
        sections = dump(Sections.model_validate(BuiltinEngine().draft(pack, context).sections))
        return Drafted(sections, "builtin", reason, audit, fallback=True)


class Heartbeat:
    """A thread that keeps refreshing a claimed generation's heartbeat until stopped (or superseded)."""

    def __init__(self, *, factory: sessionmaker[Session], pm_id: int, attempt: int, clock: Callable[[], datetime],
                 interval: float) -> None:
        self._factory, self._pm_id, self._attempt, self._clock, self._interval = factory, pm_id, attempt, clock, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-pm{pm_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with db.transaction(self._factory) as session:
                    alive = service.heartbeat(session=session, pm_id=self._pm_id, attempt=self._attempt,
                                              now=self._clock())
            except Exception:  # why: a database blip must not kill the beat; the next one retries
                log.warning("heartbeat of postmortem %s failed; retrying", self._pm_id, exc_info=True)
                continue
            if not alive:
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def run_generation(
    *, factory: sessionmaker[Session], pm_id: int, choose_engine: EngineChoice, clock: Callable[[], datetime],
    lookback_minutes: int, box: SecretBox | None = None, limits: Limits | None = None,
    heartbeat_seconds: float = 10.0,
) -> str:
    """Claim a queued postmortem, draft it with its organization's engine and store the result; return what happened."""
    with db.transaction(factory) as session:
        org_id = session.scalar(select(Postmortem.org_id).where(Postmortem.id == pm_id))
        if org_id is None:
            return "skipped"
        engine = choose_engine(session, org_id)  # why: the run records which engine drafted it, from the claim on
        claimed = service.claim(session=session, pm_id=pm_id, engine=engine.label, worker=_worker_label(), now=clock())
        if claimed is None:
            return "skipped"
        pm, run = claimed
        attempt, run_id, incident_id = pm.attempt, run.id, pm.incident_id
        # why: a regeneration builds on what people wrote; the template's owners and instructions shape every draft
        context = DraftContext(current_sections=pm.sections if pm.sections else None,
                               edited_keys=tuple(pm.edited_keys or ()) if pm.sections else (),
                               instructions=templates.section_instructions(session, org_id),
                               service_owners=templates.service_owners(session, org_id),
                               extra_sections=tuple((e["key"], e["title"], e.get("instruction") or "")
                                                    for e in templates.content(session, org_id)["extra_sections"]),
                               severity_definitions=tuple(templates.severity_definitions(session, org_id) or ()))
    with Heartbeat(factory=factory, pm_id=pm_id, attempt=attempt, clock=clock, interval=heartbeat_seconds):
        return _draft_claimed(factory=factory, pm_id=pm_id, engine=engine, clock=clock, attempt=attempt, run_id=run_id,
                              incident_id=incident_id, context=context, lookback_minutes=lookback_minutes,
                              box=box, limits=limits)


def _draft_claimed(
    *, factory: sessionmaker[Session], pm_id: int, engine: Engine, clock: Callable[[], datetime], attempt: int,
    run_id: int, incident_id: int, context: DraftContext, lookback_minutes: int, box: SecretBox | None,
    limits: Limits | None,
) -> str:
    """Gather evidence, run the engine and store the draft (or the failure) of a claimed attempt."""

    def step(name: str) -> None:
        # why: each step in its own short transaction, so the card sees it while the model is still writing
        try:
            with db.transaction(factory) as session:
                service.set_step(session=session, pm_id=pm_id, attempt=attempt, run_id=run_id, step=name, now=clock())
        except Exception:  # why: progress is a courtesy; a database blip must not cost the draft
            log.warning("recording step %s of postmortem %s failed", name, pm_id, exc_info=True)

    evidence: dict | None = None
    try:
        with db.transaction(factory) as session:
            incident = session.get(Incident, incident_id)
            pack = build_pack(session=session, incident=incident, lookback_minutes=lookback_minutes, now=clock())
            tasks = evidence_observe.plan(session=session, incident=incident, box=box, limits=limits)
        # why: backends are queried after the transaction ends so a slow one never holds database locks
        pack, missing = evidence_observe.observe(pack, tasks)
        pack, fingerprint = _resemblances(factory, incident_id, pack)
        evidence = pack.to_json()
        if missing:
            evidence["observability_errors"] = missing
        drafted = draft_with_fallback(engine, pack, context, step)
        error = drafted.error
        if missing:
            note = "Some observability evidence could not be fetched: " + "; ".join(missing)
            error = f"{error} {note}" if error else note
    except Exception as exc:  # why: any failure must end in `failed` with its reason, never stuck in generating
        log.exception("generation of postmortem %s failed", pm_id)
        reason = str(exc) if isinstance(exc, UpstreamError) else f"Drafting failed: {type(exc).__name__}: {exc}"
        with db.transaction(factory) as session:
            service.fail(session=session, pm_id=pm_id, attempt=attempt, run_id=run_id, error=reason, evidence=evidence,
                         now=clock())
            store_audit(session=session, run_id=run_id, audit=exc.audit if isinstance(exc, EngineFailed) else None)
        return "failed"
    step("storing")
    with db.transaction(factory) as session:
        done = service.finish(session=session, pm_id=pm_id, attempt=attempt, run_id=run_id,
                              draft=_mark_tracked(session, incident_id,
                                                  keep_template_extra(drafted.sections, context)),
                              engine=drafted.engine, error=error, evidence=evidence, now=clock(),
                              fallback=drafted.fallback)
        store_audit(session=session, run_id=run_id, audit=drafted.audit)
        if done and fingerprint is not None:
            similar.remember(session, session.get(Incident, incident_id), fingerprint, clock())
    return "drafted" if done else "superseded"


def _mark_tracked(session: Session, incident_id: int, sections: dict) -> dict:
    """Point each drafted action item that repeats an open one (same service and intent) at it (`tracked_as`)."""
    items = sections.get("action_items") if isinstance(sections, dict) else None
    if not items:
        return sections
    try:
        with session.begin_nested():
            incident = session.get(Incident, incident_id)
            marked = []
            for item in items:
                item = {k: v for k, v in item.items() if k != "tracked_as"}  # why: only BlameTrail sets it
                found = actions.open_repeat(session, incident=incident, title=str(item.get("title") or ""))
                marked.append({**item, "tracked_as": found.id} if found else item)
        return {**sections, "action_items": marked}
    except Exception:  # why: a courtesy; never cost the draft
        log.warning("looking for tracked repeats of incident %s failed", incident_id, exc_info=True)
        return sections


def _resemblances(factory: sessionmaker[Session], incident_id: int, pack):
    """Fingerprint the analysed evidence and add the earlier incidents it resembles to the pack (as inc_N)."""
    try:
        fingerprint = similarity.from_pack(pack)
        with db.transaction(factory) as session:
            found = similar.similar(session, session.get(Incident, incident_id), before_only=True,
                                    fingerprint=fingerprint, limit=3)
        return similar.with_resemblances(pack, found), fingerprint
    except Exception:  # why: resemblance is a courtesy; it must never cost the draft
        log.warning("finding similar incidents for incident %s failed", incident_id, exc_info=True)
        return pack, None


def store_audit(*, session: Session, run_id: int, audit: Audit | None) -> None:
    """Record what the model was sent and answered on the run (nothing for the built-in engine)."""
    run = session.get(GenerationRun, run_id)
    if run is None or audit is None:
        return
    run.prompt_version, run.prompt, run.response_raw = audit.prompt_version, audit.prompt, audit.response_raw
    run.tokens_in, run.tokens_out, run.model_latency_ms = audit.tokens_in, audit.tokens_out, audit.latency_ms
