"""Monitor endpoints of the JSON API: configure HTTP monitors and read their recent checks."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from blametrail import netguard
from blametrail.monitors import service as monitors
from blametrail.monitors.schemas import CheckResultRead, MonitorCreate, MonitorRead, MonitorUpdate
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.params import IdPath
from blametrail.web.presenters import check_read, monitor_read

router = APIRouter(prefix="/api/v1", tags=["monitors"])


@router.post("/monitors", status_code=201, response_model=MonitorRead)
def create_monitor(data: MonitorCreate, actor: ApiActor, session: SessionDep, now: NowDep, rt: RuntimeDep):
    return monitor_read(monitors.create(session=session, actor=actor, data=data, now=now,
                                            policy=netguard.policy_from(rt.settings)))


@router.get("/monitors", response_model=list[MonitorRead])
def list_monitors(actor: ApiActor, session: SessionDep):
    return [monitor_read(m) for m in monitors.list_monitors(session=session, actor=actor)]


@router.get("/monitors/{monitor_id}", response_model=MonitorRead)
def get_monitor(monitor_id: IdPath, actor: ApiActor, session: SessionDep):
    return monitor_read(monitors.get_or_404(session=session, org_id=actor.org_id, monitor_id=monitor_id))


@router.patch("/monitors/{monitor_id}", response_model=MonitorRead)
def update_monitor(monitor_id: IdPath, data: MonitorUpdate, actor: ApiActor, session: SessionDep, now: NowDep,
                   rt: RuntimeDep):
    return monitor_read(monitors.update(session=session, actor=actor, monitor_id=monitor_id, data=data, now=now,
                                            policy=netguard.policy_from(rt.settings)))


@router.delete("/monitors/{monitor_id}", status_code=204, response_class=Response)
def delete_monitor(monitor_id: IdPath, actor: ApiActor, session: SessionDep):
    monitors.delete_monitor(session=session, actor=actor, monitor_id=monitor_id)
    return Response(status_code=204)


@router.get("/monitors/{monitor_id}/checks", response_model=list[CheckResultRead])
def list_checks(monitor_id: IdPath, actor: ApiActor, session: SessionDep,
                limit: int = Query(50, ge=1, le=monitors.MAX_CHECKS_PAGE)):
    return [check_read(c) for c in monitors.recent_checks(session=session, org_id=actor.org_id,
                                                                       monitor_id=monitor_id, limit=limit)]
