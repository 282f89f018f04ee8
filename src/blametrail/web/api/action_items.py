"""Action item endpoints of the JSON API: list across incidents, add, read, change, and make from the draft."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from blametrail.actions import service as actions
from blametrail.actions.models import ActionItem
from blametrail.actions.schemas import ActionItemCreate, ActionItemList, ActionItemRead, ActionItemUpdate
from blametrail.incidents import service as incidents
from blametrail.orgs.permissions import Action, require
from blametrail.postmortems import service as postmortems
from blametrail.web.deps import ApiActor, NowDep, SessionDep
from blametrail.web.params import IdPath, IdQuery

router = APIRouter(prefix="/api/v1", tags=["action items"])


def item_reads(session: Session, items: list[ActionItem], now: datetime) -> list[dict]:
    """Return the read shapes of items (their repeat links resolved in one query)."""
    today = now.date()
    dups = actions.duplicates_of(session=session, items=items)
    out = []
    for i in items:
        d = dups.get(i.duplicate_of_id) if i.duplicate_of_id else None
        out.append({
            "id": i.id, "incident_id": i.incident_id, "title": i.title, "description": i.description or "",
            "priority": i.priority, "owner": i.owner, "due_date": i.due_date, "status": i.status,
            "overdue": actions.is_overdue(i, today), "kind": i.kind, "evidence": i.evidence or [],
            "service": i.service, "source": i.source,
            "duplicate_of": {"id": d.id, "incident_id": d.incident_id, "status": d.status, "title": d.title}
            if d else None,
            "external": i.external, "created_at": i.created_at, "updated_at": i.updated_at,
            "completed_at": i.completed_at,
        })
    return out


def item_read(session: Session, item: ActionItem, now: datetime) -> dict:
    return item_reads(session, [item], now)[0]


def from_draft(*, session: Session, actor, incident_id: int, now: datetime) -> list[ActionItem]:
    """Make records of the action items in the incident's postmortem (members and up); the shared page/API path."""
    incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    require(actor.role, Action.WRITE_INCIDENTS)
    pm = postmortems.find(session=session, org_id=actor.org_id, incident_id=incident_id)
    return actions.materialize(session=session, org_id=actor.org_id, incident_id=incident_id,
                               sections=pm.sections if pm else None, actor_label=actor.label, now=now)


@router.get("/action-items", response_model=ActionItemList)
def list_action_items(
    actor: ApiActor, session: SessionDep, now: NowDep, status: str | None = Query(None, max_length=100),
    owner: str | None = Query(None, max_length=320), incident_id: IdQuery = None, overdue: bool | None = None,
):
    rows = actions.list_items(session=session, org_id=actor.org_id, today=now.date(), status=status, owner=owner,
                              incident_id=incident_id, overdue=overdue)
    return {"items": item_reads(session, rows, now)}


@router.post("/incidents/{incident_id}/action-items", status_code=201, response_model=ActionItemRead)
def create_action_item(incident_id: IdPath, data: ActionItemCreate, actor: ApiActor, session: SessionDep,
                       now: NowDep):
    item = actions.create(session=session, actor=actor, incident_id=incident_id, data=data, now=now)
    return item_read(session, item, now)


@router.post("/incidents/{incident_id}/action-items/from-draft", response_model=ActionItemList)
def create_from_draft(incident_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    """Make records of the postmortem's action items; the ones already made are returned as they are."""
    return {"items": item_reads(session, from_draft(session=session, actor=actor, incident_id=incident_id, now=now),
                                now)}


@router.get("/action-items/{item_id}", response_model=ActionItemRead)
def get_action_item(item_id: IdPath, actor: ApiActor, session: SessionDep, now: NowDep):
    return item_read(session, actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id), now)


@router.patch("/action-items/{item_id}", response_model=ActionItemRead)
def patch_action_item(item_id: IdPath, data: ActionItemUpdate, actor: ApiActor, session: SessionDep, now: NowDep):
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    return item_read(session, actions.update(session=session, actor=actor, item=item, data=data, now=now), now)
