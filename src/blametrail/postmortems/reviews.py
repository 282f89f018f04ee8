"""Review and comments on a postmortem, beside its status (no new status: the seed's statuses stay as they are).

- Comments sit on one section (a built-in key, or `extra:<key>` of the template), may be replied to (one level), and
  a thread is resolved or reopened as a whole. Everyone in the organization reads them; members and up write.
- Review (the organization's `review_mode`): `off` — no review requests; `optional` — members and up ask named members
  (members, admins, owners) to review, and reviewers approve or ask for changes; `required` — as optional, and
  publishing waits for an approval of the text as it is now (an approval names the postmortem version it was given
  on; any later edit needs a new one). `summary` says who approved what, for the pages and the publish message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.engines.sections import SECTION_KEYS
from blametrail.errors import InvalidState, NotFound, ValidationFailed
from blametrail.orgs import service as orgs
from blametrail.orgs import templates
from blametrail.orgs.models import Organization
from blametrail.orgs.permissions import Action, can, require
from blametrail.orgs.service import Actor
from blametrail.postmortems.models import Comment, Postmortem, ReviewRequest

REVIEW_MODES = ("off", "optional", "required")
MAX_COMMENT = 10_000
MAX_REVIEWERS = 20
DECISIONS = {"approve": "approved", "request_changes": "changes_requested"}


@dataclass(frozen=True)
class Thread:
    comment: Comment
    replies: tuple[Comment, ...]


def _sections_of(session: Session, pm: Postmortem) -> set[str]:
    extra = ((pm.sections or {}).get("extra") or {}) if pm.sections else {}
    known = {f"extra:{e['key']}" for e in templates.content(session, pm.org_id)["extra_sections"]}
    return set(SECTION_KEYS) | known | {f"extra:{k}" for k in extra}


def threads(*, session: Session, pm: Postmortem) -> dict[str, list[Thread]]:
    """Return the comment threads by section key, oldest first."""
    rows = list(session.scalars(select(Comment).where(Comment.postmortem_id == pm.id).order_by(Comment.id)))
    replies: dict[int, list[Comment]] = {}
    for c in rows:
        if c.parent_id is not None:
            replies.setdefault(c.parent_id, []).append(c)
    out: dict[str, list[Thread]] = {}
    for c in rows:
        if c.parent_id is None:
            out.setdefault(c.section, []).append(Thread(c, tuple(replies.get(c.id, ()))))
    return out


def add_comment(*, session: Session, actor: Actor, pm: Postmortem, section: str, body: str,
                parent_id: int | None, now: datetime) -> Comment:
    """Comment on a section, or reply to a thread (members and up)."""
    require(actor.role, Action.WRITE_INCIDENTS)
    body = (body or "").replace("\r\n", "\n").strip()
    errors = []
    if not body:
        errors.append({"loc": ["body"], "msg": "write the comment"})
    elif len(body) > MAX_COMMENT:
        errors.append({"loc": ["body"], "msg": f"at most {MAX_COMMENT:,} characters (this one has {len(body):,})"})
    parent = None
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is None or parent.postmortem_id != pm.id or parent.org_id != actor.org_id:
            raise NotFound(f"Comment {parent_id} not found on this postmortem.")
        if parent.parent_id is not None:
            parent = session.get(Comment, parent.parent_id)  # why: one level of replies; a reply to a reply joins it
        section = parent.section
    elif section not in _sections_of(session, pm):
        errors.append({"loc": ["section"], "msg": "not a section of this postmortem"})
    if errors:
        raise ValidationFailed("The comment cannot be saved: " + "; ".join(e["msg"] for e in errors) + ".", errors)
    comment = Comment(org_id=actor.org_id, postmortem_id=pm.id, section=section, body=body,
                      parent_id=parent.id if parent else None, author_user_id=actor.user_id, author=actor.label,
                      resolved=False, created_at=now, updated_at=now)
    session.add(comment)
    if parent is not None and parent.resolved:  # why: a reply reopens the conversation
        parent.resolved, parent.resolved_by, parent.resolved_at, parent.updated_at = False, None, None, now
    session.flush()
    return comment


def get_comment_or_404(*, session: Session, org_id: int, comment_id: int) -> Comment:
    """Return a comment of the organization or raise NotFound."""
    comment = session.get(Comment, comment_id)
    if comment is None or comment.org_id != org_id:
        raise NotFound(f"Comment {comment_id} not found.")
    return comment


def set_resolved(*, session: Session, actor: Actor, comment: Comment, resolved: bool, now: datetime) -> Comment:
    """Resolve or reopen a thread (its first comment; a reply resolves its thread)."""
    require(actor.role, Action.WRITE_INCIDENTS)
    if comment.parent_id is not None:
        comment = session.get(Comment, comment.parent_id)
    comment.resolved = bool(resolved)
    comment.resolved_by, comment.resolved_at = (actor.label, now) if resolved else (None, None)
    comment.updated_at = now
    session.flush()
    return comment


def _org(session: Session, pm: Postmortem) -> Organization:
    return orgs.get_org(session=session, org_id=pm.org_id)


def request_review(*, session: Session, actor: Actor, pm: Postmortem, reviewer_ids: list[int],
                   now: datetime) -> list[ReviewRequest]:
    """Ask named members to review (members and up); asking again resets their answer to pending."""
    require(actor.role, Action.POSTMORTEM_WRITE)
    if _org(session, pm).review_mode == "off":
        raise InvalidState("Review is off for this organization: an owner turns it on in Settings.")
    if pm.sections is None:
        raise InvalidState("There is nothing to review until the first draft is ready.")
    ids = list(dict.fromkeys(int(i) for i in reviewer_ids))
    if not ids or len(ids) > MAX_REVIEWERS:
        raise ValidationFailed(f"Name between 1 and {MAX_REVIEWERS} reviewers.",
                               [{"loc": ["reviewer_ids"], "msg": f"1 to {MAX_REVIEWERS} member ids"}])
    members = {m.user_id: m for m in orgs.list_members(session=session, org_id=pm.org_id)}
    wrong = [i for i in ids if i not in members or not can(members[i].role, Action.POSTMORTEM_WRITE)]
    if wrong:
        raise ValidationFailed("Reviewers must be members, admins or owners of this organization.",
                               [{"loc": ["reviewer_ids"], "msg": f"not a reviewer here: {wrong[:5]}"}])
    existing = {r.reviewer_user_id: r for r in session.scalars(select(ReviewRequest).where(
        ReviewRequest.postmortem_id == pm.id))}
    out = []
    for user_id in ids:
        row = existing.get(user_id)
        if row is None:
            row = ReviewRequest(org_id=pm.org_id, postmortem_id=pm.id, reviewer_user_id=user_id,
                                reviewer=orgs.actor_for(members[user_id]).label, requested_at=now)
            session.add(row)
        row.state, row.approved_version, row.note, row.decided_at = "pending", None, None, None
        row.requested_by, row.requested_at = actor.label, now
        out.append(row)
    session.flush()
    return out


def decide(*, session: Session, actor: Actor, pm: Postmortem, decision: str, note: str | None,
           now: datetime) -> ReviewRequest:
    """Approve the text as it is now, or ask for changes (a reviewer who was asked)."""
    require(actor.role, Action.POSTMORTEM_WRITE)
    if decision not in DECISIONS:
        raise ValidationFailed("decision must be approve or request_changes.",
                               [{"loc": ["decision"], "msg": "approve | request_changes"}])
    row = session.scalar(select(ReviewRequest).where(ReviewRequest.postmortem_id == pm.id,
                                                     ReviewRequest.reviewer_user_id == actor.user_id))
    if row is None:
        raise InvalidState("You were not asked to review this postmortem; someone who can edit it can ask you.")
    note = (note or "").strip()
    if len(note) > MAX_COMMENT:
        raise ValidationFailed("The note is too long.", [{"loc": ["note"], "msg": f"at most {MAX_COMMENT:,}"}])
    row.state = DECISIONS[decision]
    row.approved_version = pm.version if decision == "approve" else None
    row.note, row.decided_at = note or None, now
    session.flush()
    return row


def reviews(*, session: Session, pm: Postmortem) -> list[ReviewRequest]:
    """Return the review requests, in the order they were made."""
    return list(session.scalars(select(ReviewRequest).where(ReviewRequest.postmortem_id == pm.id)
                                .order_by(ReviewRequest.id)))


def summary(*, session: Session, pm: Postmortem) -> dict:
    """Say where review stands: mode, each reviewer's answer, who approved the text as it is now, open threads."""
    rows = reviews(session=session, pm=pm)
    open_threads = sum(1 for ts in threads(session=session, pm=pm).values() for t in ts if not t.comment.resolved)
    current = [r.reviewer for r in rows if r.state == "approved" and r.approved_version == pm.version]
    return {"mode": _org(session, pm).review_mode, "approved_by": current, "open_threads": open_threads,
            "reviewers": [{"user_id": r.reviewer_user_id, "reviewer": r.reviewer, "state": r.state,
                           "current": r.state == "approved" and r.approved_version == pm.version,
                           "approved_version": r.approved_version, "note": r.note, "requested_by": r.requested_by,
                           "decided_at": r.decided_at} for r in rows]}


def check_publish(*, session: Session, pm: Postmortem) -> None:
    """Refuse to publish while the organization requires review and nobody approved the text as it is now."""
    if _org(session, pm).review_mode != "required":
        return
    if not any(r.state == "approved" and r.approved_version == pm.version for r in reviews(session=session, pm=pm)):
        raise InvalidState("This organization publishes reviewed postmortems only: ask a reviewer to approve the "
                           "text as it is now (an edit after an approval needs a new one).")


def set_mode(*, session: Session, org_id: int, mode: str) -> Organization:
    """Set the organization's review mode (owners; the API and Settings page check the role)."""
    if mode not in REVIEW_MODES:
        raise ValidationFailed("review_mode must be off, optional or required.",
                               [{"loc": ["review_mode"], "msg": "off | optional | required"}])
    org = orgs.get_org(session=session, org_id=org_id)
    org.review_mode = mode
    session.flush()
    return org
