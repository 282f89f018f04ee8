"""POST|GET /api/v1/incidents/{id}/slack-channel: link an incident to its Slack channel; its messages become updates."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from blametrail.incidents import service as incidents
from blametrail.vendors import slack_channel
from blametrail.web.deps import ApiActor, NowDep, SessionDep
from blametrail.web.params import IdPath

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/slack-channel", tags=["integrations"])


class ChannelLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel_id: str = Field(min_length=1, max_length=40)


class ChannelRead(BaseModel):
    channel_id: str | None = Field(description="null when the incident is not linked to a channel")
    incident_id: int
    status: str | None = Field(None, description="queued | importing | imported | failed")
    imported_at: str | None = None
    counts: dict | None = Field(None, description="{added, edited, removed, unchanged} of the last import")
    error: str | None = None
    complete: bool | None = None


@router.post("", response_model=ChannelRead)
def link_channel(incident_id: IdPath, data: ChannelLink, actor: ApiActor, session: SessionDep, now: NowDep):
    """Link the channel (members and up) and queue the import of its messages and thread replies as updates."""
    row = slack_channel.link(session=session, actor=actor, incident_id=incident_id, channel=data.channel_id, now=now)
    return slack_channel.link_read(row)


@router.get("", response_model=ChannelRead)
def channel(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    """The linked channel and how its last import went (channel_id null when none is linked)."""
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    row = slack_channel.linked_channel(session=session, incident=incident)
    return slack_channel.link_read(row) or {"channel_id": None, "incident_id": incident.id}
