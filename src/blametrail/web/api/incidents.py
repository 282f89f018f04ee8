"""Incident and deploy endpoints of the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from blametrail.analysis import ids
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import DeployCreate, DeployRead
from blametrail.incidents import service as incidents
from blametrail.incidents.schemas import (
    IncidentCreate,
    IncidentPage,
    IncidentRead,
    ResolveRequest,
    TimelineItemRead,
    UpdateCreate,
    UpdateRead,
)
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import service as postmortems
from blametrail.web import presenters
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.post("/incidents", status_code=201, response_model=IncidentRead)
def create_incident(data: IncidentCreate, actor: ApiActor, session: SessionDep, now: NowDep):
    require(actor.role, Action.WRITE_INCIDENTS)
    return presenters.incident_read(session, incidents.create(session=session, actor=actor, data=data, now=now))


@router.get("/incidents", response_model=IncidentPage)
def list_incidents(
    actor: ApiActor, session: SessionDep, status: str | None = None, service: str | None = None,
    severity: str | None = None, q: str | None = None, limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
):
    rows, next_cursor = incidents.list_incidents(session=session, org_id=actor.org_id, status=status, service=service,
                                                 severity=severity, q=q, limit=limit, cursor=cursor)
    return {"items": presenters.incident_reads(session, rows), "next_cursor": next_cursor}


@router.get("/incidents/{incident_id}", response_model=IncidentRead)
def get_incident(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return presenters.incident_read(session, incident)


@router.post("/incidents/{incident_id}/updates", status_code=201, response_model=UpdateRead)
def post_update(incident_id: IdPath, data: UpdateCreate, actor: ApiActor, session: SessionDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.WRITE_INCIDENTS)
    e = incidents.add_update(session=session, actor=actor, incident=incident, data=data, now=now)
    return {"id": e.id, "evidence_id": ids.update_id(e.id), "incident_id": incident.id, "at": e.at, "body": e.body,
            "author": e.author, "created_at": e.created_at}


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentRead)
def resolve_incident(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep,
                     data: ResolveRequest | None = None):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.WRITE_INCIDENTS)
    resolved = postmortems.resolve_incident(session=session, incident=incident, now=now,
                                            resolved_at=data.resolved_at if data else None, by_label=actor.label,
                                            by_user_id=actor.user_id)
    return presenters.incident_read(session, resolved)


@router.get("/incidents/{incident_id}/timeline", response_model=list[TimelineItemRead])
def get_timeline(incident_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return incidents.timeline(session=session, incident=incident, lookback_minutes=rt.settings.lookback_minutes, now=now)


@router.post("/deploys", status_code=201, response_model=DeployRead, tags=["deploys"],
             responses={200: {"model": DeployRead, "description": "external_id already recorded: the existing deploy"}})
def create_deploy(data: DeployCreate, actor: ApiActor, session: SessionDep, now: NowDep, response: Response):
    """Record a deploy (201); a repeated `external_id` (per source) records nothing new and answers 200 with it."""
    require(actor.role, Action.WRITE_INCIDENTS)
    deploy, created = deploys.create_or_get(session=session, actor=actor, data=data, now=now)
    if not created:
        response.status_code = 200
    return presenters.deploy_read(deploy)


@router.get("/deploys", response_model=list[DeployRead], tags=["deploys"])
def list_deploys(actor: ApiActor, session: SessionDep, service: str | None = None,
                 limit: int = Query(50, ge=1, le=200)):
    return [presenters.deploy_read(d) for d in deploys.list_deploys(session=session, org_id=actor.org_id, service=service,
                                                             limit=limit)]


@router.get("/deploys/{deploy_id}", response_model=DeployRead, tags=["deploys"])
def get_deploy(deploy_id: IdPath, actor: ApiActor, session: SessionDep):
    return presenters.deploy_read(deploys.get_or_404(session=session, org_id=actor.org_id, deploy_id=deploy_id))
