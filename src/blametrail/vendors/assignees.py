"""Who an action item is assigned to in the tracker: the organization maps owners to tracker users.

An action item's owner is a member (their e-mail) or a team's name; trackers assign people by their own ids (a
GitHub login, a Linear user id, a Jira account id). The tracker integration's `assignees` setting holds one mapping
per line, `owner = tracker user` (`dana@acme.test = dana-gh`, `payments-team = 5b10a2844c20165700ede21g`); an owner
not listed is left unassigned. Nothing is guessed: BlameTrail never assigns a person because they wrote a commit, and
only an owner the team set on the item is looked up.
"""

from __future__ import annotations

import re

from blametrail.vendors.base import Setting

MAX_ENTRIES = 500
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")


def parse(text: str) -> dict[str, str]:
    """Return {owner (lower case): tracker user} from the setting's lines; raise ValueError naming the bad line."""
    mapping: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        owner, sep, user = line.partition("=")
        owner, user = owner.strip(), user.strip()
        if not sep or not owner or not user:
            raise ValueError(f"line {number}: write it as owner = tracker user")
        if len(owner) > 200:
            raise ValueError(f"line {number}: the owner is longer than 200 characters")
        if not _USER.fullmatch(user):
            raise ValueError(f"line {number}: {user[:40]!r} is not a tracker user id (letters, digits, . _ : @ + -)")
        mapping[owner.lower()] = user
        if len(mapping) > MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} owners")
    return mapping


def check(text: str) -> str | None:
    """Return what is wrong with the setting's text, or None (the settings form and API say it)."""
    try:
        parse(text)
    except ValueError as exc:
        return str(exc)
    return None


def lookup(config: dict, owner: str | None) -> str | None:
    """Return the tracker user mapped to an item's owner, or None (unmapped owners stay unassigned)."""
    if not owner or not owner.strip():
        return None
    try:
        return parse(str(config.get("assignees") or "")).get(owner.strip().lower())
    except ValueError:
        return None


def setting(example_user: str) -> Setting:
    """The `assignees` setting as each tracker asks for it."""
    return Setting("assignees", "Assignees", required=False, multiline=True, max_length=20000, check=check,
                   hint=f"Optional. One per line: owner = tracker user, e.g. dana@acme.test = {example_user}. "
                        "An owner is a member's e-mail or a team's name; unlisted owners stay unassigned.")
