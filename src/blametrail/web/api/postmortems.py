"""Postmortem endpoints of the JSON API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail.clock import iso
from blametrail.db import MAX_INT
from blametrail.incidents import service as incidents
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.sections import SectionsPatch
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/postmortem", tags=["postmortems"])


class RegenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overwrite_edited: bool = False


class PostmortemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(..., ge=1, le=MAX_INT)
    sections: SectionsPatch


def revision_read(r) -> dict:
    return {"number": r.number, "status": r.status, "author": r.author, "kind": r.kind, "engine": r.engine,
            "created_at": iso(r.created_at)}


@router.get("")
def get_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    return postmortems.to_read(postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id))


@router.post("", status_code=202)
def create_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.request_generation(session=session, actor=actor, incident_id=incident_id, now=now)
    return postmortems.to_read(pm)


@router.post("/regenerate", status_code=202)
def regenerate_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep, rt: RuntimeDep,
                          data: RegenerateRequest | None = None):
    pm = postmortems.regenerate(session=session, actor=actor, incident_id=incident_id,
                                overwrite_edited=bool(data and data.overwrite_edited), now=now,
                                interval_seconds=rt.settings.regenerate_interval_seconds)
    return postmortems.to_read(pm)


@router.patch("")
def edit_postmortem(incident_id: IdPath, data: PostmortemPatch, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.edit(session=session, actor=actor, incident_id=incident_id, version=data.version,
                          patch=data.sections, now=now)
    return postmortems.to_read(pm)


@router.post("/publish")
def publish_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    return postmortems.to_read(postmortems.publish(session=session, actor=actor, incident_id=incident_id, now=now))


@router.get("/original")
def get_original(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if pm.original_sections is None:
        from blametrail.errors import NotFound
        raise NotFound("No AI draft has been produced yet.")
    return {"engine": pm.engine, "generated_at": iso(pm.generated_at), "sections": pm.original_sections}


@router.get("/revisions")
def list_revisions(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return [revision_read(r) for r in postmortems.list_revisions(session=session, pm=pm)]


@router.get("/revisions/{number}")
def get_revision(incident_id: IdPath, number: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    r = postmortems.get_revision(session=session, pm=pm, number=number)
    return {**revision_read(r), "sections": r.sections}


@router.get("/runs")
def list_runs(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    """List the generation runs; owners and admins also see the audit (prompt sent, raw model response)."""
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    audit = actor.role in ("owner", "admin")
    return [{"id": r.id, "attempt": r.attempt, "engine": r.engine, "status": r.status, "started_at": iso(r.started_at),
             "finished_at": iso(r.finished_at), "duration_ms": r.duration_ms, "error": r.error, "worker": r.worker,
             "evidence": r.evidence, "prompt_version": r.prompt_version, "tokens_in": r.tokens_in,
             "tokens_out": r.tokens_out, "model_latency_ms": r.model_latency_ms,
             **({"prompt": r.prompt, "response_raw": r.response_raw} if audit else {})}
            for r in postmortems.runs(session=session, pm=pm)]


@router.get("/export.md", response_class=Response, responses={200: {
    "description": "The postmortem as a Markdown document (a download)",
    "content": {"text/markdown": {"schema": {"type": "string"}}}}})
def export_markdown(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    if pm.sections is None:
        from blametrail.errors import InvalidState
        raise InvalidState("The postmortem has no draft yet; nothing to export.")
    text = markdown_for(incident, pm)
    return Response(text, media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="postmortem-{incident.id}.md"'})


def markdown_for(incident, pm) -> str:
    """Render the postmortem as Markdown."""
    from blametrail.postmortems.export import to_markdown

    return to_markdown(title=incident.title, incident_id=incident.id, status=pm.status, sections=pm.sections,
                       engine=pm.engine, published_at=iso(pm.published_at), generated_at=iso(pm.generated_at))
