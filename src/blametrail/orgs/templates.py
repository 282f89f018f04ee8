"""An organization's postmortem template: who owns fixes per service, and instructions per section for drafts.

The template is one JSON document per organization (`org_template`), validated here before it is stored:
- `service_owners`: service name → the team that owns its fixes. Drafts suggest this team as the owner of an
  action item on that service (never the author of a commit: blameless by construction).
- `section_instructions`: section key → an instruction the model follows when drafting that section
  ("summary: three sentences for executives"). The built-in engine has no use for them.
Everyone in the organization reads it; owners and admins change it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.clock import iso
from blametrail.engines.sections import SECTION_KEYS, SECTION_TITLES
from blametrail.errors import ValidationFailed, VersionConflict
from blametrail.orgs.models import OrgTemplate
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor

MAX_SERVICES = 500
MAX_NAME = 200
MAX_INSTRUCTION = 1_000
KNOWN_KEYS = ("service_owners", "section_instructions")


def find(session: Session, org_id: int) -> OrgTemplate | None:
    """Return the organization's stored template row, if it saved one."""
    return session.scalar(select(OrgTemplate).where(OrgTemplate.org_id == org_id))


def content(session: Session, org_id: int) -> dict:
    """Return the template in effect (empty parts when none is stored)."""
    row = find(session, org_id)
    stored = dict(row.content or {}) if row is not None else {}
    return {"service_owners": dict(stored.get("service_owners") or {}),
            "section_instructions": dict(stored.get("section_instructions") or {})}


def service_owners(session: Session, org_id: int) -> dict[str, str]:
    """Return service → owning team from the organization's template."""
    return content(session, org_id)["service_owners"]


def section_instructions(session: Session, org_id: int) -> dict[str, str]:
    """Return section → instruction from the organization's template."""
    return content(session, org_id)["section_instructions"]


def section_layout(session: Session, org_id: int) -> list[dict]:
    """Return the sections in the order the organization shows them: [{key, title, extra, instruction}].

    Built-in sections carry `extra: False`; an extra section of the template (`extra: True`) keeps its text in
    `sections["extra"][key]`. Pages, exports and the PDF render sections in this order.
    """
    instructions = section_instructions(session, org_id)
    return [{"key": key, "title": SECTION_TITLES[key], "extra": False, "instruction": instructions.get(key)}
            for key in SECTION_KEYS]


def to_read(session: Session, org_id: int) -> dict:
    """Return the API shape: the template in effect, its version and who changed it last."""
    row = find(session, org_id)
    return {**content(session, org_id), "version": row.version if row else 0,
            "updated_at": iso(row.updated_at) if row else None, "updated_by": row.updated_by if row else None}


def _clean_map(raw: object, field: str, *, keys: tuple[str, ...] | None, max_value: int) -> tuple[dict, list[dict]]:
    errors: list[dict] = []
    if not isinstance(raw, dict):
        return {}, [{"loc": [field], "msg": "must be an object of names to text"}]
    if len(raw) > MAX_SERVICES:
        errors.append({"loc": [field], "msg": f"at most {MAX_SERVICES} entries"})
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).strip()
        if not name or len(name) > MAX_NAME or "\x00" in name:
            errors.append({"loc": [field, str(key)[:50]], "msg": f"a name of 1 to {MAX_NAME} characters"})
            continue
        if keys is not None and name not in keys:
            errors.append({"loc": [field, name], "msg": f"unknown section; choose from {', '.join(keys)}"})
            continue
        if not isinstance(value, str) or len(value.strip()) > max_value or "\x00" in value:
            errors.append({"loc": [field, name], "msg": f"text of at most {max_value} characters"})
            continue
        if value.strip():  # why: an emptied entry means "no owner / no instruction", not an empty string stored
            out[name] = value.strip()
    return out, errors


def put(*, session: Session, actor: Actor, now: datetime, data: dict, version: int | None = None) -> OrgTemplate:
    """Replace the template (owners and admins); `version`, when given, must match the stored one (409 otherwise)."""
    require(actor.role, Action.MANAGE)
    unknown = sorted(set(data) - set(KNOWN_KEYS))
    errors = [{"loc": [k], "msg": f"unknown field; the template has {', '.join(KNOWN_KEYS)}"} for k in unknown]
    owners, bad = _clean_map(data.get("service_owners", {}), "service_owners", keys=None, max_value=MAX_NAME)
    errors += bad
    instructions, bad = _clean_map(data.get("section_instructions", {}), "section_instructions", keys=SECTION_KEYS,
                                   max_value=MAX_INSTRUCTION)
    errors += bad
    if errors:
        raise ValidationFailed("The template is not valid.", errors)
    row = find(session, actor.org_id)
    current = row.version if row else 0
    if version is not None and version != current:
        raise VersionConflict(f"The template changed since you loaded it (version {current}, yours {version}); reload it.")
    if row is None:
        row = OrgTemplate(org_id=actor.org_id, content={}, version=0, updated_at=now)
        session.add(row)
    row.content = {"service_owners": owners, "section_instructions": instructions}
    row.version = current + 1
    row.updated_at, row.updated_by = now, actor.label
    session.flush()
    return row
