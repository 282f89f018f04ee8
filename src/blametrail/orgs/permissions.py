"""The role table (PRODUCT.md), as pure data: which roles may do what."""

from __future__ import annotations

from enum import StrEnum

from blametrail.errors import Forbidden


class Action(StrEnum):
    READ = "read"
    WRITE_INCIDENTS = "write_incidents"
    POSTMORTEM_WRITE = "postmortem_write"  # generate, regenerate, edit
    PUBLISH = "publish"
    MANAGE = "manage"  # members, tokens, integrations, monitors
    ORG_SETTINGS = "org_settings"  # AI on/off, plan


ALLOWED: dict[Action, frozenset[str]] = {
    Action.READ: frozenset({"owner", "admin", "member", "viewer"}),
    Action.WRITE_INCIDENTS: frozenset({"owner", "admin", "member"}),
    Action.POSTMORTEM_WRITE: frozenset({"owner", "admin", "member"}),
    Action.PUBLISH: frozenset({"owner", "admin"}),
    Action.MANAGE: frozenset({"owner", "admin"}),
    Action.ORG_SETTINGS: frozenset({"owner"}),
}

_WORDS = {
    Action.READ: "read this organization",
    Action.WRITE_INCIDENTS: "change incidents",
    Action.POSTMORTEM_WRITE: "generate or edit postmortems",
    Action.PUBLISH: "publish postmortems",
    Action.MANAGE: "manage members, tokens and integrations",
    Action.ORG_SETTINGS: "change organization settings",
}


def can(role: str, action: Action) -> bool:
    """Tell whether a role may perform an action."""
    return role in ALLOWED[action]


def require(role: str, action: Action) -> None:
    """Raise Forbidden unless the role may perform the action."""
    if not can(role, action):
        allowed = ", ".join(r for r in ("owner", "admin", "member", "viewer") if r in ALLOWED[action])
        raise Forbidden(f"The {role} role cannot {_WORDS[action]}; this needs one of: {allowed}.")
