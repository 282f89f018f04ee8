"""Action items in the team's tracker, both ways: create the issue, follow its status back, push our changes out.

- `push_item` (members and up) creates the issue in the organization's Jira, Linear or GitHub Issues from an action
  item — title, a description with the link back, the incident and the evidence, the priority — and links them
  (`item.external` = {tracker, key, url, status, synced_at}; an `external_link` row finds the item from the key).
- `apply_status` is what a tracker's webhook (or the reconcile) does with an issue's new status: the item follows
  (closed → done, not planned / won't do → wont_do, reopened → open…). Changes that come from the tracker are not
  pushed back to it.
- `on_item_changed` (an action-item change listener) queues `PUSH_TASK` when a person changes a linked item's status;
  the job moves the issue. `RECONCILE_TASK` reads the status of linked open items (oldest first, bounded) for
  deliveries a webhook missed; the sweep queues it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.actions import service as actions
from blametrail.actions import trackers
from blametrail.actions.models import ActionItem
from blametrail.actions.trackers import IssueDraft
from blametrail.errors import Conflict, InvalidState, UpstreamError, UpstreamFailed, ValidationFailed
from blametrail.incidents.models import Incident
from blametrail.netguard import OutboundPolicy
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.vendors import assignees, github_issues, jira, linear
from blametrail.vendors import service as vendors
from blametrail.vendors.models import ExternalLink

MODULES = {"github_issues": github_issues, "linear": linear, "jira": jira}
PUSH_TASK, RECONCILE_TASK = "tracker_push", "tracker_reconcile"
RECONCILE_BATCH = 50
_FROM_TRACKER = "tracker_sync_applying"  # session.info flag: a change that came from the tracker is not pushed back

for _module in MODULES.values():
    trackers.register(_module.TRACKER)


def _link_kind(tracker: str) -> str:
    return f"{tracker}_issue"


def _draft(item: ActionItem, incident: Incident, link: str, assignee: str | None = None) -> IssueDraft:
    lines = [item.description.strip()] if (item.description or "").strip() else []
    lines.append(f"Action item from the postmortem of incident #{incident.id} “{incident.title}”: {link}")
    if item.evidence:
        lines.append("Evidence: " + ", ".join(str(e) for e in item.evidence))
    if item.due_date:
        lines.append(f"Due: {item.due_date.isoformat()}")
    if item.owner:
        lines.append(f"Owner: {item.owner}")
    lines.append("Tracked in BlameTrail; closing this issue closes the action item.")
    return IssueDraft(title=item.title[:250], description="\n\n".join(lines), priority=item.priority or "medium",
                      assignee=assignee)


def push_item(*, session: Session, actor: Actor, item_id: int, tracker: str, box, policy: OutboundPolicy,
              timeout: float, base_url: str, now: datetime) -> dict:
    """Create the tracker issue for an action item and link it; return the item's `external`."""
    require(actor.role, Action.WRITE_INCIDENTS)
    item = actions.get_or_404(session=session, org_id=actor.org_id, item_id=item_id)
    if tracker not in MODULES:
        raise ValidationFailed(f"Unknown tracker {tracker[:40]!r}: use one of {', '.join(sorted(MODULES))}.",
                               [{"loc": ["tracker"], "msg": "one of " + ", ".join(sorted(MODULES))}])
    if item.external:
        raise Conflict(f"Action item {item.id} is already linked to {item.external.get('key')} "
                       f"({item.external.get('tracker')}).")
    row = vendors.find(session=session, org_id=actor.org_id, kind=tracker)
    if row is None:
        raise InvalidState(f"{vendors.vendor_or_404(tracker).label} is not set up for this organization: an owner or "
                           "admin adds it under Settings → Chat, paging and trackers.")
    incident = session.get(Incident, item.incident_id)
    try:
        config = vendors.config_of(row, box)
        issue = MODULES[tracker].TRACKER.create_issue(
            config, _draft(item, incident, f"{base_url.rstrip('/')}/action-items/{item.id}",
                           assignees.lookup(config, item.owner)), policy=policy,
            timeout=timeout)
    except ValueError as exc:
        raise UpstreamFailed("The tracker's secrets cannot be opened with the configured keys: enter them again.") \
            from exc
    except UpstreamError as exc:
        vendors.record_check(row, ok=False, error=str(exc), now=now)
        raise UpstreamFailed(str(exc)) from exc
    vendors.record_check(row, ok=True, error=None, now=now)
    item.external = trackers.external_record(tracker, issue, now)
    item.updated_at = now
    session.add(ExternalLink(org_id=item.org_id, kind=_link_kind(tracker), external_id=issue.key[:255],
                             action_item_id=item.id, data={"url": issue.url}, created_at=now, updated_at=now))
    session.flush()
    return item.external


def apply_status(*, session: Session, org_id: int, tracker: str, key: str, tracker_status: str,
                 now: datetime) -> ActionItem | None:
    """Make the linked item follow the issue's status; return it (None when no item is linked to that key)."""
    link = session.scalar(select(ExternalLink).where(ExternalLink.org_id == org_id,
                                                     ExternalLink.kind == _link_kind(tracker),
                                                     ExternalLink.external_id == key[:255]))
    item = session.get(ActionItem, link.action_item_id) if link is not None and link.action_item_id else None
    if item is None or item.org_id != org_id:
        return None
    wanted = MODULES[tracker].TRACKER.item_status(tracker_status)
    item.external = {**(item.external or {}), "status": tracker_status, "synced_at": now.isoformat()}
    changes = {}
    if wanted and wanted != item.status:
        changes["status"] = [item.status, wanted]
        item.status = wanted
        item.completed_at = now if wanted in actions.CLOSED_STATUSES else None
        item.updated_at = now
    session.flush()
    if changes:
        session.info[_FROM_TRACKER] = True
        try:
            trackers.notify(session, item, "updated", changes, now)
        finally:
            session.info.pop(_FROM_TRACKER, None)
    return item


def on_item_changed(session: Session, item: ActionItem, event: str, changes: dict, now: datetime) -> None:
    """Queue the push of a person's status change to the linked issue (not of a change the tracker made)."""
    if event == "updated" and "status" in changes and item.external and not session.info.get(_FROM_TRACKER):
        db.defer(session, PUSH_TASK, item.id)


trackers.listeners.append(on_item_changed)


def push_status(*, session: Session, item_id: int, box, policy: OutboundPolicy, timeout: float, now: datetime) -> str:
    """Move the linked issue to the item's status (the push job; runs outside a request)."""
    item = session.get(ActionItem, item_id)
    if item is None or not item.external or item.external.get("tracker") not in MODULES:
        return "skipped"
    tracker = item.external["tracker"]
    row = vendors.find(session=session, org_id=item.org_id, kind=tracker)
    if row is None:
        return "skipped"
    module = MODULES[tracker]
    try:
        config = vendors.config_of(row, box)
        if module.TRACKER.item_status(item.external.get("status") or "") == item.status:
            return "in step"
        status = module.TRACKER.set_status(config, item.external["key"], item.status, policy=policy, timeout=timeout)
    except (UpstreamError, ValueError) as exc:
        message = str(exc) if isinstance(exc, UpstreamError) else "The tracker's secrets cannot be opened."
        item.external = {**item.external, "error": message}
        vendors.record_check(row, ok=False, error=message, now=now)
        return "failed"
    item.external = {**item.external, "status": status, "synced_at": now.isoformat(), "error": None}
    vendors.record_check(row, ok=True, error=None, now=now)
    return "pushed"


def due_for_reconcile(*, session: Session, limit: int = RECONCILE_BATCH) -> list[int]:
    """Return linked items whose issue may have moved without a webhook reaching us (open ones, oldest sync first)."""
    rows = session.scalars(select(ActionItem).where(ActionItem.external.is_not(None),
                                                    or_(ActionItem.status == "open",
                                                        ActionItem.status == "in_progress"))
                           .order_by(ActionItem.updated_at).limit(limit * 4)).all()
    rows = [r for r in rows if (r.external or {}).get("tracker") in MODULES]
    rows.sort(key=lambda r: (r.external or {}).get("synced_at") or "")
    return [r.id for r in rows[:limit]]


def reconcile_item(*, session: Session, item_id: int, box, policy: OutboundPolicy, timeout: float,
                   now: datetime) -> str:
    """Read one linked issue's status and let the item follow it."""
    item = session.get(ActionItem, item_id)
    if item is None or not item.external:
        return "skipped"
    tracker = item.external.get("tracker")
    row = vendors.find(session=session, org_id=item.org_id, kind=tracker) if tracker in MODULES else None
    if row is None:
        return "skipped"
    try:
        status = MODULES[tracker].TRACKER.read_status(vendors.config_of(row, box), item.external["key"],
                                                      policy=policy, timeout=timeout)
    except (UpstreamError, ValueError) as exc:
        vendors.record_check(row, ok=False, error=str(exc), now=now)
        return "failed"
    apply_status(session=session, org_id=item.org_id, tracker=tracker, key=item.external["key"],
                 tracker_status=status, now=now)
    return "read"


def external_read(item: ActionItem) -> dict:
    """Return the API shape of an item's tracker issue (every field null while it is not linked)."""
    ext = item.external or {}  # all null while the item is not linked
    return {"tracker": ext.get("tracker"), "key": ext.get("key"), "url": ext.get("url"), "status": ext.get("status"),
            "synced_at": ext.get("synced_at"), "error": ext.get("error")}

