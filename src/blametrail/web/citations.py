"""Citations as people read them: every evidence id of a text becomes a link with a readable label and a preview.

`resolve` looks up, in a few queries, what each id of an incident's texts points at ("Update from Dana, 07:17",
"Deploy of checkout v1.4, 07:03", "Log pattern: timeout talking to db …") and a short preview of it. `Citer` renders
ids inside text (or lists of ids) as links to their evidence pages with that label, and a preview that shows on
hover or keyboard focus (CSS only: no script, the CSP stays strict). An id that points at nothing this incident
holds renders as a marked, unlinked id: a link must never lead to a 404.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail.alerts.models import Alert
from blametrail.analysis import ids
from blametrail.clock import to_utc
from blametrail.deploys.models import Commit, Deploy
from blametrail.incidents.models import Incident, TimelineEntry
from blametrail.postmortems import service as postmortems

PREVIEW_CHARS = 240
STATUS_LABELS = {"open": "Incident opened", "resolved": "Incident resolved", "acknowledged": "Acknowledged",
                 "mitigated": "Mitigated"}
MAX_IDS = 2_000  # a text citing more than this (hostile or broken) links the first ones; the rest stay plain ids


@dataclass(frozen=True)
class Cite:
    """What one evidence id points at: a label to read, a preview, and where its page is (None: nowhere)."""

    id: str
    label: str
    preview: str
    url: str | None
    kind: str


def collect(value: object, out: dict[str, None] | None = None) -> list[str]:
    """Return every well-formed evidence id inside a value (strings, lists and dicts, recursively), in order."""
    found = {} if out is None else out
    if isinstance(value, str):
        for m in ids.CITATION.finditer(value):
            found.setdefault(m.group(0), None)
    elif isinstance(value, dict):
        for v in value.values():
            collect(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            collect(v, found)
    return list(found)


def _short(text: object, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _hhmm(value) -> str:
    at = to_utc(value)
    return at.strftime("%H:%M") if at else ""


def _entry_cite(eid: str, entry: TimelineEntry, alert_names: dict[int, str]) -> Cite:
    when = _hhmm(entry.at)
    data = entry.data or {}
    if entry.kind == "update":
        who = entry.author or "someone"
        label = f"Update from {who}, {when}"
    elif entry.kind == "alert":
        name = alert_names.get(data.get("alert_id") or 0) or (data.get("labels") or {}).get("alertname") or "alert"
        label = f"Alert {name}, {when}"
    elif entry.kind == "monitor":
        label = f"Monitor check, {when}"
    else:
        label = f"{STATUS_LABELS.get(entry.status or '', 'Status change')}, {when}"
    return Cite(eid, label, _short(entry.body), None, entry.kind)


def _frozen(session: Session, *, org_id: int, incident_id: int) -> dict:
    pm = postmortems.find(session=session, org_id=org_id, incident_id=incident_id)
    if pm is None:
        return {}
    for run in postmortems.runs(session=session, pm=pm):  # newest first
        if run.evidence:
            return run.evidence
    return {}


def resolve(session: Session, *, org_id: int, incident: Incident, wanted: Iterable[str]) -> dict[str, Cite]:
    """Return {id: Cite} for the ids this incident's evidence holds; unknown ids are left out."""
    by_prefix: dict[str, set[int]] = {}
    for eid in itertools.islice(wanted, MAX_IDS):
        parsed = ids.parse(eid)
        if parsed is not None:
            by_prefix.setdefault(parsed[0], set()).add(parsed[1])
    out: dict[str, Cite] = {}
    base = f"/incidents/{int(incident.id)}/evidence/"

    entry_numbers = {n for p, nums in by_prefix.items() if p in ids.ENTRY_KIND for n in nums}
    if entry_numbers:
        rows = session.scalars(select(TimelineEntry).where(
            TimelineEntry.id.in_(entry_numbers), TimelineEntry.org_id == org_id,
            TimelineEntry.incident_id == incident.id)).all()
        alert_ids = [r.data.get("alert_id") for r in rows if r.kind == "alert" and r.data and r.data.get("alert_id")]
        names: dict[int, str] = {}
        if alert_ids:
            names = {a.id: a.name for a in session.scalars(select(Alert).where(
                Alert.id.in_(alert_ids), Alert.org_id == org_id))}
        for row in rows:
            eid = ids.entry_id(row.kind, row.id)
            if row.id in by_prefix.get(ids.prefix_of(eid), ()):  # why: upd_5 must not find the status entry 5
                c = _entry_cite(eid, row, names)
                out[eid] = Cite(c.id, c.label, c.preview, base + eid, c.kind)

    frozen: dict | None = None
    deploy_numbers = by_prefix.get(ids.DEPLOY, set())
    commit_numbers = by_prefix.get(ids.COMMIT, set())
    if deploy_numbers or commit_numbers:
        frozen = _frozen(session, org_id=org_id, incident_id=incident.id)
        commits = session.execute(select(Commit, Deploy).join(Deploy, Commit.deploy_id == Deploy.id).where(
            Commit.id.in_(commit_numbers), Deploy.org_id == org_id)).all() if commit_numbers else []
        wanted_deploys = deploy_numbers | {d.id for _, d in commits}
        deploys = {d.id: d for d in session.scalars(select(Deploy).where(
            Deploy.id.in_(wanted_deploys), Deploy.org_id == org_id))} if wanted_deploys else {}
        for number in deploy_numbers:
            d = deploys.get(number)
            if d is not None:
                eid = ids.deploy_id(number)
                out[eid] = Cite(eid, f"Deploy of {d.service} {_short(d.version, 40)}, {_hhmm(d.deployed_at)}",
                                f"{d.service} {d.version} to {d.environment} at {_hhmm(d.deployed_at)} UTC"
                                f" ({len(d.commits)} commit{'s' if len(d.commits) != 1 else ''})",
                                base + eid, "deploy")
        for commit, d in commits:
            eid = ids.commit_id(commit.id)
            first_line = (commit.message or "").strip().splitlines()[0] if (commit.message or "").strip() else ""
            out[eid] = Cite(eid, f"Commit {commit.sha[:7]} ({d.service})",
                            _short(first_line or f"A commit shipped in {d.service} {d.version}"), base + eid, "commit")

    for prefix, key, kind in ((ids.METRIC, "metrics", "metric"), (ids.LOG, "logs", "log")):
        numbers = by_prefix.get(prefix)
        if not numbers:
            continue
        if frozen is None:
            frozen = _frozen(session, org_id=org_id, incident_id=incident.id)
        for finding in frozen.get(key) or []:
            eid = str(finding.get("id") or "")
            parsed = ids.parse(eid)
            if parsed is None or parsed[0] != prefix or parsed[1] not in numbers:
                continue
            if kind == "metric":
                label = f"Metric {_short(finding.get('series'), 48)}"
                service = f" on {finding['service']}" if finding.get("service") else ""
                preview = (f"{finding.get('direction') or 'Changed'}{service} at {_hhmm(finding.get('onset'))} UTC: "
                           f"{finding.get('before')} → {finding.get('after')} {finding.get('unit') or ''}").strip()
            else:
                label = f"Log pattern: {_short(finding.get('template'), 40)}"
                preview = (f"{finding.get('incident_count', 0)} lines in the incident, "
                           f"{finding.get('baseline_count', 0)} before. {_short(finding.get('template'), 160)}")
            out[eid] = Cite(eid, label, preview, base + eid, kind)

    others = by_prefix.get(ids.INCIDENT, set())
    if others:
        for row in session.scalars(select(Incident).where(Incident.id.in_(others), Incident.org_id == org_id)):
            eid = ids.incident_id(row.id)
            out[eid] = Cite(eid, f"Incident #{row.id}", _short(row.title), f"/incidents/{row.id}", "incident")
    return out


class Citer:
    """Render evidence ids as labelled links with previews; one per page (it numbers the previews' element ids)."""

    def __init__(self, cites: dict[str, Cite], *, previews: bool = True) -> None:
        self.cites = cites
        self.previews = previews
        self._ids: Iterator[int] = itertools.count(1)

    def link(self, evidence_id: object) -> Markup:
        """Render one id: a labelled link with a preview, or a marked plain id when it points at nothing."""
        eid = str(evidence_id or "")
        cite = self.cites.get(eid)
        if cite is None or cite.url is None:
            return Markup('<span class="cite cite-missing" title="{} is not in this incident\'s evidence">'
                          '<code class="evidence-id">{}</code></span>').format(eid, eid)
        if not self.previews:
            return Markup('<a class="cite-link" href="{}" data-evidence="{}">{}</a>').format(cite.url, eid, cite.label)
        pid = f"cite-preview-{next(self._ids)}"
        return Markup(
            '<span class="cite cite-{kind}"><a class="cite-link" href="{url}" data-evidence="{eid}" '
            'aria-describedby="{pid}">{label}</a><span class="cite-preview" role="tooltip" id="{pid}">'
            '<span class="cite-preview-label">{label}</span> <span class="cite-preview-text">{preview}</span>'
            '</span></span>').format(kind=cite.kind, url=cite.url, eid=eid, pid=pid, label=cite.label,
                                     preview=cite.preview or "")

    def text(self, value: object) -> Markup:
        """Escape text and render every id inside it as a citation."""
        text = "" if value is None else str(value)
        out, pos = [], 0
        for m in ids.CITATION.finditer(text):
            out += [escape(text[pos:m.start()]), self.link(m.group(0))]
            pos = m.end()
        out.append(escape(text[pos:]))
        return Markup("").join(out)

    def many(self, evidence: Iterable[object] | None) -> Markup:
        """Render a list of ids as citations separated by commas ("—" when there are none)."""
        items = [self.link(e) for e in evidence or []]
        return Markup(", ").join(items) if items else Markup("—")


def citer_for(session: Session, *, org_id: int, incident: Incident, values: Iterable[object],
              previews: bool = True) -> Citer:
    """Return a Citer knowing every id cited anywhere in `values`."""
    wanted: dict[str, None] = {}
    for value in values:
        collect(value, wanted)
    return Citer(resolve(session, org_id=org_id, incident=incident, wanted=list(wanted)), previews=previews)
