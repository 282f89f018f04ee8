"""Linking an incident to its Slack channel from the incident page (the panel is rendered with the page)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from blametrail import db
from blametrail.errors import InvalidState, ValidationFailed
from blametrail.vendors import slack_channel
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, redirect
from blametrail.web.pages.incidents import render_detail
from blametrail.web.params import IdPath

router = APIRouter()


@router.post("/incidents/{incident_id}/slack-channel")
def link_channel(incident_id: IdPath, request: Request, form: FormDep, actor: PageActor, session: SessionDep,
                 rt: RuntimeDep, now: NowDep):
    channel = field(form, "channel_id")
    try:
        slack_channel.link(session=session, actor=actor, incident_id=incident_id, channel=channel, now=now)
    except (ValidationFailed, InvalidState) as exc:
        db.rollback(session)
        return render_detail(request, session=session, actor=actor, rt=rt, now=now, incident_id=incident_id,
                             status_code=exc.status, slack_error=exc.detail, slack_value=channel)
    flash(request, f"Slack channel {channel} linked: its messages are being imported as updates.", "success")
    return redirect(f"/incidents/{incident_id}#slack-panel")
