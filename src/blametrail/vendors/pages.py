"""Publish a published postmortem to a wiki (Confluence, Notion) as a page; publishing again updates that page.

The page id is kept as an ExternalLink (kind `<target>_page`) of the incident, so a republish updates the same page
instead of making another one. Only published versions leave BlameTrail (never unpublished text).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.clock import iso
from blametrail.errors import NotFound, UpstreamError, UpstreamFailed, ValidationFailed
from blametrail.incidents import service as incidents
from blametrail.netguard import OutboundPolicy
from blametrail.orgs import templates
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.postmortems import service as postmortems
from blametrail.vendors import confluence, document, notion
from blametrail.vendors import service as vendors
from blametrail.vendors.models import ExternalLink

TARGETS = ("confluence", "notion")


def link_of(session: Session, *, org_id: int, incident_id: int, target: str) -> ExternalLink | None:
    return session.scalar(select(ExternalLink).where(ExternalLink.org_id == org_id,
                                                     ExternalLink.incident_id == incident_id,
                                                     ExternalLink.kind == f"{target}_page"))


def publish(*, session: Session, actor: Actor, incident_id: int, target: str, box, policy: OutboundPolicy,
            timeout: float, link: str, now: datetime, action_items: list[dict] | None = None) -> tuple[dict, bool]:
    """Put the latest published version on the wiki; return ({target, url, page_id, version}, created)."""
    if target not in TARGETS:
        raise ValidationFailed(f"target must be one of {', '.join(TARGETS)}.",
                               [{"loc": ["body", "target"], "msg": f"one of {', '.join(TARGETS)}"}])
    require(actor.role, Action.PUBLISH)
    incident = incidents.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    pm = postmortems.get_or_404(session=session, org_id=actor.org_id, incident_id=incident_id)
    published = postmortems.published_version(session=session, pm=pm)
    row = vendors.find(session=session, org_id=actor.org_id, kind=target)
    if row is None:
        raise NotFound(f"{target.capitalize()} is not set up for this organization (Organization → Integrations).")
    config = vendors.config_of(row, box)
    rev = published.revision
    title, blocks = document.build(
        title=f"#{incident.id} {incident.title}", sections=rev.sections,
        layout=templates.section_layout(session, actor.org_id), version=published.version,
        published_at=iso(rev.created_at) or "", published_by=rev.author, link=link, action_items=action_items)
    existing = link_of(session, org_id=actor.org_id, incident_id=incident_id, target=target)
    page_id = existing.external_id if existing else None
    try:
        if target == "confluence":
            api = confluence.ConfluenceClient(config, policy, timeout)
            try:
                page = api.publish(title, blocks, page_id)
            finally:
                api.close()
        else:
            page = notion.publish(config, policy, timeout, title=title, blocks=blocks, page_id=page_id)
    except UpstreamError as exc:
        vendors.record_check(row, ok=False, error=str(exc), now=now)
        session.flush()
        raise UpstreamFailed(str(exc)) from exc
    vendors.record_check(row, ok=True, error=None, now=now)
    data = {"url": page["url"], "version": published.version, "published_at": iso(now)}
    if existing is None:
        existing = ExternalLink(org_id=actor.org_id, kind=f"{target}_page", external_id=page["id"],
                                incident_id=incident_id, data=data, created_at=now, updated_at=now)
        session.add(existing)
    else:
        existing.data, existing.updated_at = data, now
    session.flush()
    return {"target": target, "url": page["url"], "page_id": page["id"], "version": published.version}, page_id is None
