"""An organization's postmortem template: who owns fixes per service, and instructions per section for drafts.

The template is one JSON document per organization (`org_template`), validated here before it is stored:
- `service_owners`: service name → the team that owns its fixes. Drafts suggest this team as the owner of an
  action item on that service (never the author of a commit: blameless by construction).
- `section_instructions`: section key → an instruction the model follows when drafting that section
  ("summary: three sentences for executives"). The built-in engine has no use for them. Keys may be built-in
  section keys or the keys of `extra_sections`.
- `section_order`: the section keys (built-in and extra) in the order pages and exports show them; keys left out
  are appended in default order (built-in first, then extra sections as listed).
- `extra_sections`: [{key, title, instruction?}] sections the organization adds; their text lives in
  `sections["extra"][key]`.
- `severity_definitions`: the organization's severity definitions (analysis.severity.definitions_from's shape);
  empty means the built-in definitions.
A PUT replaces the whole template: a field left out goes back to its default.
Everyone in the organization reads it; owners and admins change it.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.analysis.severity import definitions_from
from blametrail.clock import iso
from blametrail.engines.sections import SECTION_KEYS, SECTION_TITLES
from blametrail.errors import ValidationFailed, VersionConflict
from blametrail.orgs.models import OrgTemplate
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor

MAX_SERVICES = 500
MAX_NAME = 200
MAX_INSTRUCTION = 1_000
MAX_EXTRA = 20
MAX_TITLE = 200
MAX_EXTRA_TEXT = 20_000
EXTRA_KEY = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
KNOWN_KEYS = ("service_owners", "section_instructions", "section_order", "extra_sections", "severity_definitions")


def find(session: Session, org_id: int) -> OrgTemplate | None:
    """Return the organization's stored template row, if it saved one."""
    return session.scalar(select(OrgTemplate).where(OrgTemplate.org_id == org_id))


def content(session: Session, org_id: int) -> dict:
    """Return the template in effect (empty parts when none is stored)."""
    row = find(session, org_id)
    stored = dict(row.content or {}) if row is not None else {}
    extra = [dict(e) for e in (stored.get("extra_sections") or [])]
    return {"service_owners": dict(stored.get("service_owners") or {}),
            "section_instructions": dict(stored.get("section_instructions") or {}),
            "section_order": full_order(stored.get("section_order") or [], [e["key"] for e in extra]),
            "extra_sections": extra,
            "severity_definitions": list(stored.get("severity_definitions") or [])}


def full_order(order: list[str], extra_keys: list[str]) -> list[str]:
    """Return `order` restricted to known keys, with every missing key appended in default order."""
    known = list(SECTION_KEYS) + list(extra_keys)
    seen = [k for k in dict.fromkeys(order) if k in known]
    return seen + [k for k in known if k not in seen]


def extra_keys(session: Session, org_id: int) -> list[str]:
    """Return the keys of the organization's extra sections, in template order."""
    return [e["key"] for e in content(session, org_id)["extra_sections"]]


def validate_extra(session: Session, org_id: int, extra: dict) -> dict:
    """Check text for the organization's extra sections (editor use); unknown keys or bad text -> ValidationFailed."""
    if not isinstance(extra, dict):
        raise ValidationFailed("Extra sections are not valid.", [{"loc": ["extra"], "msg": "must be an object"}])
    keys = extra_keys(session, org_id)
    errors, out = [], {}
    for key, value in extra.items():
        if key not in keys:
            errors.append({"loc": ["extra", str(key)[:50]],
                           "msg": f"unknown extra section; the template has {', '.join(keys) or 'none'}"})
        elif not isinstance(value, str) or len(value) > MAX_EXTRA_TEXT or "\x00" in value:
            errors.append({"loc": ["extra", key], "msg": f"Markdown text of at most {MAX_EXTRA_TEXT} characters"})
        else:
            out[key] = value
    if errors:
        raise ValidationFailed("Extra sections are not valid.", errors)
    return out


def severity_definitions(session: Session, org_id: int):
    """Return the organization's severity definitions (parsed), or None for the built-in ones."""
    data = content(session, org_id)["severity_definitions"]
    return definitions_from(data) if data else None


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
    current = content(session, org_id)
    instructions = current["section_instructions"]
    extra = {e["key"]: e for e in current["extra_sections"]}
    out = []
    for key in current["section_order"]:
        if key in extra:
            out.append({"key": key, "title": extra[key]["title"], "extra": True,
                        "instruction": extra[key].get("instruction") or instructions.get(key)})
        else:
            out.append({"key": key, "title": SECTION_TITLES[key], "extra": False, "instruction": instructions.get(key)})
    return out


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


def _clean_extra(raw: object) -> tuple[list[dict], list[dict]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [{"loc": ["extra_sections"], "msg": "must be a list of {key, title, instruction}"}]
    errors: list[dict] = []
    if len(raw) > MAX_EXTRA:
        errors.append({"loc": ["extra_sections"], "msg": f"at most {MAX_EXTRA} extra sections"})
    out: list[dict] = []
    for n, item in enumerate(raw[:MAX_EXTRA]):
        if not isinstance(item, dict):
            errors.append({"loc": ["extra_sections", n], "msg": "must be an object {key, title, instruction}"})
            continue
        bad = sorted(set(item) - {"key", "title", "instruction"})
        if bad:
            errors.append({"loc": ["extra_sections", n], "msg": f"unknown field {', '.join(map(str, bad))}"})
        key, title, instruction = item.get("key"), item.get("title"), item.get("instruction")
        if not isinstance(key, str) or not EXTRA_KEY.match(key):
            errors.append({"loc": ["extra_sections", n, "key"],
                           "msg": "2 to 41 characters: a lowercase letter, then lowercase letters, digits or _"})
            continue
        if key in SECTION_KEYS:
            errors.append({"loc": ["extra_sections", n, "key"], "msg": f"{key} is a built-in section"})
            continue
        if any(e["key"] == key for e in out):
            errors.append({"loc": ["extra_sections", n, "key"], "msg": f"{key} is listed twice"})
            continue
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= MAX_TITLE or "\x00" in title:
            errors.append({"loc": ["extra_sections", n, "title"], "msg": f"a title of 1 to {MAX_TITLE} characters"})
            continue
        if instruction is not None and (not isinstance(instruction, str) or len(instruction.strip()) > MAX_INSTRUCTION
                                        or "\x00" in instruction):
            errors.append({"loc": ["extra_sections", n, "instruction"],
                           "msg": f"text of at most {MAX_INSTRUCTION} characters"})
            continue
        entry = {"key": key, "title": title.strip()}
        if instruction and instruction.strip():
            entry["instruction"] = instruction.strip()
        out.append(entry)
    return out, errors


def _clean_order(raw: object, keys: list[str]) -> tuple[list[str], list[dict]]:
    if raw is None:
        return full_order([], keys[len(SECTION_KEYS):]), []
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        return [], [{"loc": ["section_order"], "msg": "must be a list of section keys"}]
    errors = [{"loc": ["section_order", k[:50]], "msg": f"unknown section; choose from {', '.join(keys)}"}
              for k in raw if k not in keys]
    if len(set(raw)) != len(raw):
        errors.append({"loc": ["section_order"], "msg": "each section may appear once"})
    return full_order(raw, keys[len(SECTION_KEYS):]), errors


def _clean_severity(raw: object) -> tuple[list, list[dict]]:
    if raw is None or raw == []:
        return [], []
    try:
        definitions_from(raw)
    except ValueError as exc:
        return [], [{"loc": ["severity_definitions"], "msg": str(exc)}]
    return raw, []


def put(*, session: Session, actor: Actor, now: datetime, data: dict, version: int | None = None) -> OrgTemplate:
    """Replace the template (owners and admins); `version`, when given, must match the stored one (409 otherwise)."""
    require(actor.role, Action.MANAGE)
    unknown = sorted(set(data) - set(KNOWN_KEYS))
    errors = [{"loc": [k], "msg": f"unknown field; the template has {', '.join(KNOWN_KEYS)}"} for k in unknown]
    owners, bad = _clean_map(data.get("service_owners", {}), "service_owners", keys=None, max_value=MAX_NAME)
    errors += bad
    extra, bad = _clean_extra(data.get("extra_sections"))
    errors += bad
    all_keys = list(SECTION_KEYS) + [e["key"] for e in extra]
    instructions, bad = _clean_map(data.get("section_instructions", {}), "section_instructions",
                                   keys=tuple(all_keys), max_value=MAX_INSTRUCTION)
    errors += bad
    order, bad = _clean_order(data.get("section_order"), all_keys)
    errors += bad
    severity, bad = _clean_severity(data.get("severity_definitions"))
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
    row.content = {"service_owners": owners, "section_instructions": instructions, "section_order": order,
                   "extra_sections": extra, "severity_definitions": severity}
    row.version = current + 1
    row.updated_at, row.updated_by = now, actor.label
    session.flush()
    return row
