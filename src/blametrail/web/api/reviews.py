"""Comments and review in the JSON API (shared/API.md "Additions"): comments on sections with replies and resolve,
review requests and decisions, the state of review beside the postmortem's status."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from blametrail.clock import iso
from blametrail.postmortems import reviews
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import Comment
from blametrail.web.deps import ApiActor, NowDep, SessionDep
from blametrail.web.params import MAX_ID, IdPath

router = APIRouter(tags=["postmortems"])
BASE = "/api/v1/incidents/{incident_id}/postmortem"


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    section: str = Field("", max_length=64, description="a section key, or extra:<key>; ignored for a reply")
    body: str = Field(max_length=reviews.MAX_COMMENT * 2)
    parent_id: int | None = Field(None, ge=1, le=MAX_ID, description="reply to this comment's thread")


class CommentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolved: bool


class ReviewRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer_ids: list[int] = Field(max_length=reviews.MAX_REVIEWERS, description="user ids of members to ask")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: str = Field(description="approve | request_changes")
    note: str | None = Field(None, max_length=reviews.MAX_COMMENT)


def comment_read(c: Comment) -> dict:
    return {"id": c.id, "section": c.section, "body": c.body, "parent_id": c.parent_id, "author": c.author,
            "resolved": c.resolved, "resolved_by": c.resolved_by, "resolved_at": iso(c.resolved_at),
            "created_at": iso(c.created_at)}


def _summary_read(data: dict) -> dict:
    return {**data, "reviewers": [{**r, "decided_at": iso(r["decided_at"])} for r in data["reviewers"]]}


@router.get(BASE + "/comments")
def list_comments(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    """Every thread, by section: [{...comment, replies: [...]}]."""
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return {"items": [{**comment_read(t.comment), "replies": [comment_read(r) for r in t.replies]}
                      for ts in reviews.threads(session=session, pm=pm).values() for t in ts]}


@router.post(BASE + "/comments", status_code=201)
def create_comment(incident_id: IdPath, data: CommentCreate, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return comment_read(reviews.add_comment(session=session, actor=actor, pm=pm, section=data.section,
                                            body=data.body, parent_id=data.parent_id, now=now))


@router.patch("/api/v1/postmortem-comments/{comment_id}")
def patch_comment(comment_id: IdPath, data: CommentPatch, actor: ApiActor, session: SessionDep, now: NowDep):
    """Resolve or reopen a thread (a reply's id stands for its thread)."""
    comment = reviews.get_comment_or_404(session=session, org_id=actor.org_id, comment_id=comment_id)
    return comment_read(reviews.set_resolved(session=session, actor=actor, comment=comment, resolved=data.resolved,
                                             now=now))


@router.get(BASE + "/reviews")
def get_reviews(incident_id: IdPath, actor: ApiActor, session: SessionDep):
    """{mode, approved_by, open_threads, reviewers: [{user_id, reviewer, state, current, approved_version, …}]}."""
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    return _summary_read(reviews.summary(session=session, pm=pm))


@router.post(BASE + "/reviews")
def request_reviews(incident_id: IdPath, data: ReviewRequestIn, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    reviews.request_review(session=session, actor=actor, pm=pm, reviewer_ids=data.reviewer_ids, now=now)
    return _summary_read(reviews.summary(session=session, pm=pm))


@router.post(BASE + "/reviews/decision")
def decide(incident_id: IdPath, data: Decision, actor: ApiActor, session: SessionDep, now: NowDep):
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    reviews.decide(session=session, actor=actor, pm=pm, decision=data.decision, note=data.note, now=now)
    return _summary_read(reviews.summary(session=session, pm=pm))
