"""The organization's postmortem template page: service owners, per-section drafting instructions, extra sections,
the section order and the severity levels.

Everyone in the organization reads it; owners and admins change it (orgs.templates decides, as for the API's
GET/PUT /api/v1/org/template). The form sends the service-owner table as repeated columns plus a Remove box per
row, so rows are added and removed without JavaScript (app.js only adds an "Add a service" button).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import FormData

from blametrail import db
from blametrail.analysis import severity
from blametrail.engines.sections import SECTION_KEYS
from blametrail.errors import ValidationFailed, VersionConflict
from blametrail.orgs import templates
from blametrail.orgs.permissions import Action, can, require
from blametrail.web.deps import NowDep, PageActor, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, redirect, render
from blametrail.web.pages.editform import LABELS as SECTION_LABELS

router = APIRouter(prefix="/settings")
BLANK_ROWS = 2
RULES_PER_LEVEL = 3  # rules shown per severity level (any one matching rates the incident at that level)
IMPACT_LABELS = {"none": "No impact", "unknown": "Unknown", "degraded": "Degraded", "partial": "Partial outage",
                 "outage": "Outage", "total": "Total outage"}
HINTS = {
    "summary": "e.g. Three sentences an executive can read: what broke, for whom, how long.",
    "action_items": "e.g. Every item names the team and a due date within two sprints.",
    "root_cause": "e.g. Name the mechanism, not only the trigger.",
}


def _rows(owners: dict[str, str]) -> list[dict]:
    rows = [{"service": s, "team": t, "remove": False} for s, t in sorted(owners.items(), key=lambda kv: kv[0].lower())]
    return rows + [{"service": "", "team": "", "remove": False} for _ in range(BLANK_ROWS)]


def _page(request: Request, *, session, actor, values: dict | None = None, errors: list[str] | None = None,
          conflict: str | None = None, status_code: int = 200):
    read = templates.to_read(session, actor.org_id)
    values = values or {"rows": _rows(read["service_owners"]), "instructions": read["section_instructions"],
                        "version": read["version"], "extra": _extra_rows(read["extra_sections"]),
                        "order": {key: n for n, key in enumerate(read["section_order"], start=1)},
                        "severity": _severity_values(read["severity_definitions"])}
    values.setdefault("extra", _extra_rows(read["extra_sections"]))
    values.setdefault("severity", _severity_values(read["severity_definitions"]))
    values.setdefault("order", {key: n for n, key in enumerate(read["section_order"], start=1)})
    layout = templates.section_layout(session, actor.org_id)
    sections = [{"key": k, "label": SECTION_LABELS.get(k, k), "hint": HINTS.get(k, "")} for k in SECTION_KEYS]
    return render(request, "org_template.html", {
        "nav": "settings", "tab": "template", "template": read, "values": values, "errors": errors or [],
        "conflict": conflict, "sections": sections, "can_edit": can(actor.role, Action.MANAGE),
        "can_see_model": can(actor.role, Action.MANAGE), "max_instruction": templates.MAX_INSTRUCTION,
        "max_name": templates.MAX_NAME, "layout": layout, "max_extra": templates.MAX_EXTRA,
        "impacts": [(k, IMPACT_LABELS[k]) for k in severity.IMPACTS],
        "builtin_levels": severity.definitions_to_data(),
    }, actor=actor, status_code=status_code)


def _severity_values(stored: list[dict]) -> dict:
    """The severity editor's values: the organization's own levels, else the built-in ones to start from."""
    custom = bool(stored)
    data = {d["severity"]: d for d in (stored or severity.definitions_to_data())}
    levels = []
    for sev in severity.SEVERITIES:
        d = data.get(sev)
        rules = [{"impacts": set(r.get("impacts") or []), "min_minutes": r.get("min_minutes", 0),
                  "min_services": r.get("min_services", 1)} for r in (d or {}).get("rules") or []]
        rules += [{"impacts": set(), "min_minutes": "", "min_services": ""}
                  for _ in range(max(0, RULES_PER_LEVEL - len(rules)))]
        levels.append({"severity": sev, "use": d is not None, "meaning": (d or {}).get("meaning", ""),
                       "rules": rules[:max(RULES_PER_LEVEL, len(rules))]})
    return {"custom": custom, "levels": levels}


def _read_severity(form: FormData) -> dict:
    levels = []
    for sev in severity.SEVERITIES:
        rules = []
        for r in range(RULES_PER_LEVEL):
            rules.append({"impacts": {str(v) for v in form.getlist(f"sev_{sev}_{r}_impacts")},
                          "min_minutes": str(form.get(f"sev_{sev}_{r}_minutes") or "").strip(),
                          "min_services": str(form.get(f"sev_{sev}_{r}_services") or "").strip()})
        levels.append({"severity": sev, "use": form.get(f"sev_use_{sev}") == "1",
                       "meaning": str(form.get(f"sev_meaning_{sev}") or "").replace("\r\n", "\n").strip(),
                       "rules": rules})
    return {"custom": form.get("sev_custom") == "1", "levels": levels}


def _number(value: object, name: str, sev: str, errors: list[str], default: int) -> int:
    text = str(value if value is not None else "").strip()
    if not text:
        return default
    if not text.isdigit():
        errors.append(f"Severity levels: {sev}: {name} must be a whole number of at least 0, not {text[:20]!r}.")
        return default
    return int(text)


def _severity_data(values: dict) -> tuple[list[dict], list[str]]:
    """The severity definitions the form keeps (empty: the built-in scale), and what is wrong with them."""
    if not values["custom"]:
        return [], []
    errors: list[str] = []
    out = []
    for level in values["levels"]:
        if not level["use"]:
            continue
        rules = []
        for rule in level["rules"]:
            if not rule["impacts"]:
                continue  # a row with no impact ticked is an unused row
            rules.append({"impacts": [k for k in severity.IMPACTS if k in rule["impacts"]],
                          "min_minutes": _number(rule["min_minutes"], "minutes", level["severity"], errors, 0),
                          "min_services": _number(rule["min_services"], "services", level["severity"], errors, 1)})
        if not rules:
            errors.append(f"Severity levels: {level['severity']} needs at least one rule (tick the impacts it "
                          "covers), or untick “Use this level”.")
        out.append({"severity": level["severity"], "meaning": level["meaning"], "rules": rules})
    if not out:
        errors.append("Severity levels: use at least one level, or go back to the built-in levels.")
    return out, errors


def _extra_rows(extra: list[dict]) -> list[dict]:
    rows = [{"key": e["key"], "title": e["title"], "instruction": e.get("instruction", ""), "remove": False}
            for e in extra]
    return rows + [{"key": "", "title": "", "instruction": "", "remove": False}]


def _read_form(form: FormData) -> dict:
    services, teams = form.getlist("owner_service"), form.getlist("owner_team")
    removed = {str(v) for v in form.getlist("owner_remove")}
    rows = []
    for i in range(max(len(services), len(teams))):
        def cell(values: list, i: int = i) -> str:
            return str(values[i]).strip() if i < len(values) else ""
        rows.append({"service": cell(services), "team": cell(teams), "remove": str(i) in removed})
    instructions = {k: str(form.get(f"instr_{k}") or "").replace("\r\n", "\n").strip() for k in SECTION_KEYS}
    keys, titles, texts = form.getlist("extra_key"), form.getlist("extra_title"), form.getlist("extra_instruction")
    gone = {str(v) for v in form.getlist("extra_remove")}
    extra = []
    for i in range(max(len(keys), len(titles))):
        def value(values: list, i: int = i) -> str:
            return str(values[i]).replace("\r\n", "\n").strip() if i < len(values) else ""
        extra.append({"key": value(keys), "title": value(titles), "instruction": value(texts), "remove": str(i) in gone})
    order = {}
    for name in form.keys():
        if name.startswith("pos_"):
            try:
                order[name[4:]] = int(field(form, name))
            except ValueError:
                order[name[4:]] = 999
    try:
        version = int(field(form, "version"))
    except ValueError:
        version = None
    return {"rows": rows, "instructions": instructions, "version": version, "extra": extra, "order": order,
            "severity": _read_severity(form)}


def _extra(rows: list[dict]) -> list[dict]:
    """The extra sections the form keeps (rows not removed and not empty), as the template stores them."""
    out = []
    for row in rows:
        if row["remove"] or not (row["key"] or row["title"]):
            continue
        entry = {"key": row["key"], "title": row["title"]}
        if row["instruction"]:
            entry["instruction"] = row["instruction"]
        out.append(entry)
    return out


def _owners(rows: list[dict]) -> tuple[dict[str, str], list[str]]:
    """Return service → team from the kept rows, and one message per row that cannot be kept as typed."""
    owners: dict[str, str] = {}
    errors = []
    for number, row in enumerate(rows, start=1):
        if row["remove"] or not (row["service"] or row["team"]):
            continue
        if not row["service"]:
            errors.append(f"Service owners row {number}: name the service {row['team']} owns.")
        elif not row["team"]:
            errors.append(f"Service owners row {number}: name the team that owns {row['service']}, or tick Remove.")
        elif row["service"].lower() in {s.lower() for s in owners}:
            errors.append(f"Service owners row {number}: {row['service']} is listed twice; keep one row.")
        else:
            owners[row["service"]] = row["team"]
    return owners, errors


def _messages(exc: ValidationFailed) -> list[str]:
    out = []
    for e in exc.extra.get("errors") or []:
        loc = [str(p) for p in e.get("loc", ())]
        head = {"service_owners": "Service owners", "section_instructions": "Instructions",
                "extra_sections": "Extra sections", "section_order": "Section order",
                "severity_definitions": "Severity levels"}.get(loc[0], loc[0]) \
            if loc else ""
        name = SECTION_LABELS.get(loc[1], loc[1]) if len(loc) > 1 else ""
        out.append(f"{head}{' · ' + name if name else ''}: {e.get('msg', 'invalid')}")
    return out or [exc.detail]


@router.get("/template")
def template_page(request: Request, actor: PageActor, session: SessionDep):
    return _page(request, session=session, actor=actor)


@router.post("/template")
def template_save(request: Request, form: FormDep, actor: PageActor, session: SessionDep, now: NowDep):
    require(actor.role, Action.MANAGE)
    values = _read_form(form)
    owners, errors = _owners(values["rows"])
    definitions, severity_errors = _severity_data(values["severity"])
    errors = errors + severity_errors
    if errors:
        return _page(request, session=session, actor=actor, values=values, errors=errors, status_code=422)
    current = templates.to_read(session, actor.org_id)
    # why: the page edits two parts of the template; any other part stays as stored, never emptied by this form
    data = {k: v for k, v in current.items() if k in templates.KNOWN_KEYS}
    extra = _extra(values["extra"])
    kept = {k: v for k, v in current["section_instructions"].items() if k not in SECTION_KEYS}  # extra keys' own
    known = set(SECTION_KEYS) | {e["key"] for e in extra}  # why: a section removed above leaves the order too
    listed = list(values["order"])  # the form's order: position n+1 is where a section stood

    def place(key: str) -> tuple[int, int, int]:
        n = listed.index(key)
        moved = values["order"][key] != n + 1
        return values["order"][key], 0 if moved else 1, n  # why: a section numbered into a taken place goes first

    order = [k for k in sorted(listed, key=place) if k in known]
    data |= {"service_owners": owners, "extra_sections": extra, "section_order": order,
             "severity_definitions": definitions,
             "section_instructions": {**kept, **{k: v for k, v in values["instructions"].items() if v}}}
    try:
        templates.put(session=session, actor=actor, now=now, data=data, version=values["version"])
    except VersionConflict:
        db.rollback(session)
        stored = templates.to_read(session, actor.org_id)
        who = f" by {stored['updated_by']}" if stored.get("updated_by") else ""
        return _page(request, session=session, actor=actor, values={**values, "version": stored["version"]},
                     conflict=f"Someone else saved the template{who} since you opened it. Your changes are below and "
                              "not saved; save again to replace theirs, or reload the page to see them.",
                     status_code=409)
    except ValidationFailed as exc:
        db.rollback(session)
        return _page(request, session=session, actor=actor, values=values, errors=_messages(exc), status_code=422)
    flash(request, "Template saved: the next drafts follow it.", "success")
    return redirect("/settings/template")
