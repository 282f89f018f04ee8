"""Deploys: record one with its commits, list and read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.deploys.models import Commit, Deploy
from blametrail.deploys.schemas import DeployCreate
from blametrail.errors import NotFound, ValidationFailed
from blametrail.orgs.service import Actor


def create(*, session: Session, actor: Actor, data: DeployCreate, now: datetime) -> Deploy:
    """Record a deploy and the commits it shipped."""
    at = data.deployed_at or now
    if at > now + timedelta(minutes=5):
        raise ValidationFailed("deployed_at is in the future.", [{"loc": ["deployed_at"], "msg": "in the future"}])
    deploy = Deploy(
        org_id=actor.org_id, service=data.service, environment=data.environment, version=data.version,
        deployed_at=at, created_by_user_id=actor.user_id, created_at=now,
        commits=[Commit(sha=c.sha.lower(), author=c.author, message=c.message, files=list(c.files),
                        committed_at=c.committed_at) for c in data.commits],
    )
    session.add(deploy)
    session.flush()
    return deploy


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


def to_read(deploy: Deploy) -> dict:
    """Return the API shape of a deploy."""
    return {
        "id": deploy.id, "evidence_id": f"deploy_{deploy.id}", "service": deploy.service,
        "environment": deploy.environment, "version": deploy.version, "deployed_at": deploy.deployed_at,
        "created_at": deploy.created_at,
        "commits": [{"evidence_id": f"commit_{c.id}", "sha": c.sha, "author": c.author, "message": c.message,
                     "files": c.files, "committed_at": c.committed_at} for c in deploy.commits],
    }
