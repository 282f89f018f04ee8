"""Postmortem endpoints of the JSON API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail.db import MAX_INT
from blametrail.engines.sections import SectionsPatch
from blametrail.incidents import service as incidents
from blametrail.postmortems import service as postmortems
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath, IdQuery
from blametrail.web.presenters import PostmortemRead, PublishedRead

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/postmortem", tags=["postmortems"])


class RegenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overwrite_edited: bool = False


class PostmortemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(..., ge=1, le=MAX_INT)
    sections: SectionsPatch


@router.get("", response_model=PostmortemRead)
def get_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return presenters.postmortem_read(pm)


@router.post("", status_code=202, response_model=PostmortemRead)
def create_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.request_generation(session=session, actor=actor, incident_id=incident_id, now=now)
    return presenters.postmortem_read(pm)


@router.post("/regenerate", status_code=202, response_model=PostmortemRead)
def regenerate_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep, rt: RuntimeDep,
                          data: RegenerateRequest | None = None):
    pm = postmortems.regenerate(session=session, actor=actor, incident_id=incident_id,
                                overwrite_edited=bool(data and data.overwrite_edited), now=now,
                                interval_seconds=rt.settings.regenerate_interval_seconds)
    return presenters.postmortem_read(pm)


@router.patch("", response_model=PostmortemRead)
def edit_postmortem(incident_id: IdPath, data: PostmortemPatch, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.edit(session=session, actor=actor, incident_id=incident_id, version=data.version,
                          patch=data.sections, now=now)
    return presenters.postmortem_read(pm)


@router.post("/publish", response_model=PostmortemRead)
def publish_postmortem(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    """Publish (a new published version); a published postmortem is republished only if its text changed."""
    pm = postmortems.publish(session=session, actor=actor, incident_id=incident_id, now=now)
    return presenters.postmortem_read(pm)


@router.get("/published", response_model=PublishedRead)
def get_published(incident_id: IdPath, actor: ApiActor, session: SessionDep, version: IdQuery = None):
    """The latest published version (or `?version=N`), frozen as it was published; 404 before the first publish."""
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return presenters.published_read(postmortems.published_version(session=session, pm=pm, version=version))


@router.get("/original")
def get_original(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return presenters.original_read(pm)


@router.get("/revisions")
def list_revisions(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return [presenters.revision_read(r) for r in postmortems.list_revisions(session=session, pm=pm)]


@router.get("/revisions/{number}")
def get_revision(incident_id: IdPath, number: IdPath, actor: ApiActor, session: SessionDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    r = postmortems.get_revision(session=session, pm=pm, number=number)
    return {**presenters.revision_read(r), "sections": r.sections}


@router.get("/runs")
def list_runs(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    """List the generation runs; owners and admins also see the audit (prompt sent, raw model response)."""
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    audit = actor.role in ("owner", "admin")
    return [presenters.run_read(r, audit=audit) for r in postmortems.runs(session=session, pm=pm)]


@router.get("/export.md", response_class=Response, responses={200: {
    "description": "The postmortem as a Markdown document (a download)",
    "content": {"text/markdown": {"schema": {"type": "string"}}}}})
def export_markdown(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return presenters.markdown_download(incident, pm)
