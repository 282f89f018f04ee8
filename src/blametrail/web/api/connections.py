"""Observability connection endpoints of the JSON API (owner/admin write, everyone in the org reads)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from blametrail import netguard
from blametrail.integrations import service as connections
from blametrail.integrations.schemas import ConnectionCreate, ConnectionRead, ConnectionTestResult, ConnectionUpdate
from blametrail.orgs.permissions import Action, can, require
from blametrail.web.connection_check import run_connection_test
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath
from blametrail.web.presenters import connection_read

router = APIRouter(prefix="/api/v1", tags=["connections"])


@router.post("/connections", status_code=201, response_model=ConnectionRead)
def create_connection(data: ConnectionCreate, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    """Add an observability connection; credentials are write-only and stored encrypted."""
    box = rt.secret_box
    connection = connections.create(session=session, actor=actor, data=data, box=box, now=now,
                                    allow_fake=rt.settings.dev_mode, policy=netguard.policy_from(rt.settings))
    return connection_read(connection, box)


@router.get("/connections", response_model=list[ConnectionRead])
def list_connections(actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.READ)
    box, details = rt.secret_box, can(actor.role, Action.MANAGE)
    return [connection_read(c, box, details=details)
            for c in connections.list_connections(session=session, org_id=actor.org_id)]


@router.get("/connections/{connection_id}", response_model=ConnectionRead)
def get_connection(connection_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.READ)
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    return connection_read(connection, rt.secret_box, details=can(actor.role, Action.MANAGE))


@router.patch("/connections/{connection_id}", response_model=ConnectionRead)
def update_connection(connection_id: IdPath, data: ConnectionUpdate, actor: ApiActor, session: SessionDep,
                      rt: RuntimeDep, now: NowDep):
    """Change a connection; `credentials` replaces the stored ones ({} removes them), omitted keeps them."""
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    box = rt.secret_box
    return connection_read(connections.update(session=session, actor=actor, connection=connection, data=data,
                                                  box=box, now=now, policy=netguard.policy_from(rt.settings)), box)


@router.delete("/connections/{connection_id}", status_code=204)
def delete_connection(connection_id: IdPath, actor: ApiActor, session: SessionDep):
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    connections.delete(session=session, actor=actor, connection=connection)
    return Response(status_code=204)


@router.post("/connections/{connection_id}/test", response_model=ConnectionTestResult,
             response_model_exclude_none=True)
def test_connection(connection_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    """Ask the backend whether it answers: 200 with {"ok": true, "message"} or {"ok": false, "error"}."""
    return run_connection_test(connection_id=connection_id, actor=actor, session=session, rt=rt)
