"""The seam for issue trackers (issue 15): a Tracker protocol, a registry of trackers, and change listeners.

- `Tracker`: what a tracker integration (Jira, Linear, GitHub Issues) provides: create an issue for an action item and
  read the status of a linked issue. `register` adds one under its name; the registry is empty until issue 15.
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
    """An issue in a tracker: its key (PROJ-12, #34), its address and its status in the tracker's own words."""

    key: str
    url: str
    status: str


class Tracker(Protocol):
    """An issue tracker an action item can be linked to."""

    name: str  # jira | linear | github_issues

    def create_issue(self, item: ActionItem) -> ExternalIssue: ...

    def read_status(self, key: str) -> str: ...


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
