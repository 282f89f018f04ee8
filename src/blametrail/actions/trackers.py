"""The seam for issue trackers (issue 15): a Tracker protocol, a registry of trackers, and change listeners.

- `Tracker`: what a tracker integration (Jira, Linear, GitHub Issues) provides: create an issue for an action item,
  read and set the status of a linked issue, and map the tracker's status to an item's. `register` adds one under its
  name (vendors/github_issues.py, linear.py, jira.py do, through vendors/registry.py).
- `listeners`: callables run after every create and update of an action item, inside the same transaction
  (`notify` is called by actions/service.py). Issue 15 hangs outbound webhooks and tracker sync here; a listener
  that needs the network should only record work (db.defer a job), never call out from the request.
- An item's `external` JSON, once linked, is {tracker, key, url, status, synced_at}; it is read-only through the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from blametrail.actions.models import ActionItem

EXTERNAL_KEYS = ("tracker", "key", "url", "status", "synced_at")


@dataclass(frozen=True)
class ExternalIssue:
    """An issue in a tracker: its key (PROJ-12, owner/repo#34), its address and its status in the tracker's words."""

    key: str
    url: str
    status: str


@dataclass(frozen=True)
class IssueDraft:
    """What an action item becomes in a tracker: title, a Markdown description (with the link back), priority, and
    the tracker user to assign when the organization maps the item's owner to one (vendors/assignees.py)."""

    title: str
    description: str
    priority: str  # high | medium | low
    assignee: str | None = None  # GitHub login, Linear user id, Jira account id


class Tracker(Protocol):
    """An issue tracker an action item can be linked to; `config` is the organization's integration settings with
    its secrets opened, `policy` and `timeout` bound every call (the outbound guard)."""

    name: str  # jira | linear | github_issues

    def create_issue(self, config: dict, draft: IssueDraft, *, policy, timeout: float) -> ExternalIssue: ...

    def read_status(self, config: dict, key: str, *, policy, timeout: float) -> str: ...

    def set_status(self, config: dict, key: str, status: str, *, policy, timeout: float) -> str: ...

    def item_status(self, tracker_status: str) -> str | None: ...


_registry: dict[str, Tracker] = {}


def register(tracker: Tracker) -> None:
    """Make a tracker available under its name (issue 15's integrations call this)."""
    _registry[tracker.name] = tracker


def get(name: str) -> Tracker | None:
    """Return the registered tracker of that name, if any."""
    return _registry.get(name)


def names() -> list[str]:
    """Return the names of the registered trackers."""
    return sorted(_registry)


def external_record(tracker: str, issue: ExternalIssue, now: datetime) -> dict:
    """Return the `external` JSON stored on an item once it is linked."""
    return {"tracker": tracker, "key": issue.key, "url": issue.url, "status": issue.status,
            "synced_at": now.isoformat()}


# (session, item, event "created" | "updated", changes {field: [old, new]} for updates, now)
Listener = Callable[["Session", "ActionItem", str, dict, datetime], None]
listeners: list[Listener] = []


def notify(session: Session, item: ActionItem, event: str, changes: dict, now: datetime) -> None:
    """Run every change listener for one created or updated item (in the caller's transaction)."""
    for listener in list(listeners):
        listener(session, item, event, changes, now)
