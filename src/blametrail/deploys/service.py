"""Deploys: record one with its commits (once per sender id), list and read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blametrail.deploys.models import Commit, Deploy
from blametrail.deploys.schemas import DeployCreate
from blametrail.errors import NotFound, ValidationFailed
from blametrail.orgs.service import Actor


def find_external(*, session: Session, org_id: int, source: str, external_id: str) -> Deploy | None:
    """Return the deploy a sender already recorded under this external id, or None."""
    return session.scalar(select(Deploy).where(Deploy.org_id == org_id, Deploy.source == source,
                                               Deploy.external_id == external_id))


def _insert(*, session: Session, org_id: int, user_id: int | None, data: DeployCreate, source: str,
            now: datetime) -> Deploy | None:
    """Insert a deploy; return None when its external id is already recorded for this source."""
    at = data.deployed_at or now
    if at > now + timedelta(minutes=5):
        raise ValidationFailed("deployed_at is in the future.", [{"loc": ["deployed_at"], "msg": "in the future"}])
    if data.external_id and find_external(session=session, org_id=org_id, source=source, external_id=data.external_id):
        return None
    deploy = Deploy(
        org_id=org_id, service=data.service, environment=data.environment, version=data.version,
        deployed_at=at, created_by_user_id=user_id, created_at=now, source=source,
        external_id=data.external_id, url=data.url,
        commits=[Commit(sha=c.sha.lower(), author=c.author, message=c.message, files=list(c.files),
                        committed_at=c.committed_at) for c in data.commits],
    )
    try:
        with session.begin_nested():
            session.add(deploy)
            session.flush()
    except IntegrityError:
        if not data.external_id:
            raise
        return None  # why: the same external id arrived twice at once; the other one won
    return deploy


def create_or_get(*, session: Session, actor: Actor, data: DeployCreate, now: datetime) -> tuple[Deploy, bool]:
    """Record a deploy and its commits; with a known external_id return the recorded one instead (created=False)."""
    deploy = _insert(session=session, org_id=actor.org_id, user_id=actor.user_id, data=data, source=data.source,
                     now=now)
    if deploy is not None:
        return deploy, True
    existing = find_external(session=session, org_id=actor.org_id, source=data.source, external_id=data.external_id)
    assert existing is not None  # _insert returns None only for a recorded external_id
    return existing, False


def create(*, session: Session, actor: Actor, data: DeployCreate, now: datetime) -> Deploy:
    """Record a deploy and the commits it shipped (or return the one already recorded under its external_id)."""
    return create_or_get(session=session, actor=actor, data=data, now=now)[0]


def record_from_webhook(*, session: Session, org_id: int, data: DeployCreate, source: str,
                        now: datetime) -> Deploy | None:
    """Record a deploy a webhook carried; return None when its external_id is already recorded (a replay)."""
    return _insert(session=session, org_id=org_id, user_id=None, data=data, source=source, now=now)


def get_or_404(*, session: Session, org_id: int, deploy_id: int) -> Deploy:
    """Return the organization's deploy or raise NotFound."""
    deploy = session.scalar(select(Deploy).where(Deploy.id == deploy_id, Deploy.org_id == org_id))
    if deploy is None:
        raise NotFound(f"Deploy {deploy_id} not found.")
    return deploy


def list_deploys(*, session: Session, org_id: int, service: str | None = None, limit: int = 50) -> list[Deploy]:
    """Return recent deploys, newest first."""
    q = select(Deploy).where(Deploy.org_id == org_id)
    if service:
        q = q.where(Deploy.service == service)
    return list(session.scalars(q.order_by(Deploy.deployed_at.desc(), Deploy.id.desc()).limit(max(1, min(limit, 200)))))
