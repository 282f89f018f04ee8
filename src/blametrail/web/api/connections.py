"""Observability connection endpoints of the JSON API (owner/admin write, everyone in the org reads)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from blametrail import db, netguard
from blametrail.errors import UpstreamError
from blametrail.integrations import service as connections
from blametrail.integrations.base import Limits, connector_for
from blametrail.integrations.schemas import ConnectionCreate, ConnectionRead, ConnectionTestResult, ConnectionUpdate
from blametrail.orgs.permissions import Action, can, require
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1", tags=["connections"])


@router.post("/connections", status_code=201, response_model=ConnectionRead)
def create_connection(data: ConnectionCreate, actor: ApiActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    """Add an observability connection; credentials are write-only and stored encrypted."""
    box = rt.secret_box
    connection = connections.create(session=session, actor=actor, data=data, box=box, now=now,
                                    allow_fake=rt.settings.dev_mode, policy=netguard.policy_from(rt.settings))
    return connections.to_read(connection, box)


@router.get("/connections", response_model=list[ConnectionRead])
def list_connections(actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.READ)
    box, details = rt.secret_box, can(actor.role, Action.MANAGE)
    return [connections.to_read(c, box, details=details)
            for c in connections.list_connections(session=session, org_id=actor.org_id)]


@router.get("/connections/{connection_id}", response_model=ConnectionRead)
def get_connection(connection_id: IdPath, actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.READ)
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    return connections.to_read(connection, rt.secret_box, details=can(actor.role, Action.MANAGE))


@router.patch("/connections/{connection_id}", response_model=ConnectionRead)
def update_connection(connection_id: IdPath, data: ConnectionUpdate, actor: ApiActor, session: SessionDep,
                      rt: RuntimeDep, now: NowDep):
    """Change a connection; `credentials` replaces the stored ones ({} removes them), omitted keeps them."""
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    box = rt.secret_box
    return connections.to_read(connections.update(session=session, actor=actor, connection=connection, data=data,
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
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    require(actor.role, Action.MANAGE)
    try:
        connector = connector_for(connection, rt.secret_box, Limits.from_settings(rt.settings))
    except UpstreamError as exc:
        outcome = connections.TestOutcome(ok=False, error=str(exc))
    else:
        # why: end the transaction before talking to the outside world, so a slow backend never holds
        # SQLite's write lock or an idle PostgreSQL transaction for the length of its timeout
        db.commit(session)
        outcome = connections.run_test(connector)
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    connections.record_test(session=session, connection=connection, outcome=outcome, now=rt.clock.now())
    return {"ok": outcome.ok, "message": outcome.message, "error": outcome.error}
