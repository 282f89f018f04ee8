"""The evaluation: generated incidents through the real services, connectors and analysis, scored against the truth;
and (`run_real`) real public outages replayed through the HTTP API (scenarios.real, docs/evaluation.md)."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from blametrail import db
from blametrail.analysis import ids, similarity
from blametrail.analysis.correlate import log_text
from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.suspects import standout
from blametrail.analysis.verdict import (
    incident_onset,
    ranked_causes,
    ranked_suspects,
    root_cause_category,
)
from blametrail.analysis.writer import write_postmortem
from blametrail.crypto import SecretBox
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import CommitIn, DeployCreate
from blametrail.evidence.observe import observe
from blametrail.evidence.pack import build_pack
from blametrail.incidents import service as incidents
from blametrail.incidents.models import Incident
from blametrail.incidents.schemas import IncidentCreate, UpdateCreate
from blametrail.integrations import service as integrations
from blametrail.integrations.schemas import ConnectionCreate
from blametrail.learning import similar
from blametrail.orgs import service as orgs
from blametrail.orgs.service import Actor
from blametrail.postmortems import service as postmortems
from blametrail.runtime import wire_hooks
from blametrail.scenarios.generator import (
    DEFAULT_SEED,
    FAULTS,
    LOOKBACK,
    METRICS,
    Scenario,
    families,
    generate,
)
from blametrail.scenarios.real import run as real_run
from blametrail.scenarios.real.incidents import RealIncident
from blametrail.scenarios.real.report import RealReport
from blametrail.scenarios.real.score import Outcome as RealOutcome
from blametrail.scenarios.servers import LOG_QUERY, METRIC_QUERIES, ObservabilityServer
from blametrail.settings import Settings

# (label, Summary field, comparison, target): the bar the issue sets for the analysis
THRESHOLDS = (
    ("culprit hit@1", "hit1", ">=", 0.85),
    ("culprit hit@3", "hit3", ">=", 0.95),
    ("onset error median (min)", "onset_median", "<=", 2.0),
    ("no-culprit: nothing named, low confidence", "abstention", ">=", 0.90),
)
ONSET_MATCH = timedelta(minutes=15)  # a metric finding this far from the true onset is not the onset's key event
_SECRET = "blametrail-evaluation"


@dataclass(frozen=True)
class Outcome:
    """How the analysis did on one scenario."""

    scenario: str
    fault: str
    hit1: bool | None  # None when nothing caused the incident
    hit3: bool | None
    category_ok: bool
    onset_error: float  # minutes
    recall: float | None  # None without key events
    abstained: bool | None  # only for no-culprit scenarios
    named: str | None  # what the root cause names: a scenario deploy key, a category key, or None
    confidence: str
    ranked: tuple[str, ...]  # the first causes, as scenario deploy keys or category keys
    fetch_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    n: int
    hit1: float | None
    hit3: float | None
    category: float | None
    onset_median: float | None
    onset_p90: float | None
    recall: float | None
    abstention: float | None


@dataclass(frozen=True)
class Resemblance:
    """How well similar-incident search finds a recurring incident's family (learning/similar.py)."""

    members: int  # family incidents asked about
    precision_at_3: float  # mean share of the first three similar incidents that are of the same family
    top1: float  # share whose most similar incident is of the same family


@dataclass(frozen=True)
class Report:
    seed: int
    outcomes: tuple[Outcome, ...]
    seconds: float
    resemblance: Resemblance | None = None

    def summary(self, fault: str | None = None) -> Summary:
        """Summarise one fault type's outcomes, or all of them."""
        chosen = [o for o in self.outcomes if fault is None or o.fault == fault]
        onsets = sorted(o.onset_error for o in chosen)
        return Summary(
            n=len(chosen), hit1=_share(o.hit1 for o in chosen), hit3=_share(o.hit3 for o in chosen),
            category=_share(o.category_ok for o in chosen),
            onset_median=statistics.median(onsets) if onsets else None,
            onset_p90=onsets[min(len(onsets) - 1, int(0.9 * len(onsets)))] if onsets else None,
            recall=_mean(o.recall for o in chosen), abstention=_share(o.abstained for o in chosen))

    def checks(self) -> list[tuple[str, float | None, str, float, bool]]:
        """Return (label, value, comparison, target, passed) for every threshold."""
        overall = self.summary()
        out = []
        for label, attr, op, target in THRESHOLDS:
            value = getattr(overall, attr)
            ok = value is not None and (value >= target if op == ">=" else value <= target)
            out.append((label, value, op, target, ok))
        return out

    @property
    def passed(self) -> bool:
        """Tell whether every threshold is met."""
        return all(ok for *_, ok in self.checks())

    def failures(self) -> list[Outcome]:
        """Return the outcomes that missed: culprit not first, or a culprit named on a no-culprit case."""
        return [o for o in self.outcomes if o.hit1 is False or o.abstained is False]

    def table(self) -> str:
        """Render the per-fault table, the thresholds with PASS/FAIL, and the time taken."""
        n = len(self.outcomes)
        head = (f"{'fault':<20} {'n':>4} {'hit@1':>6} {'hit@3':>6} {'category':>8} {'onset med':>9} "
                f"{'onset p90':>9} {'recall':>6} {'abstain':>7}")
        lines = [f"BlameTrail evaluation: {n} scenarios, seed {self.seed}", "", head, "-" * len(head)]
        faults = [f for f in FAULTS if any(o.fault == f for o in self.outcomes)]
        for name, summary in [(f, self.summary(f)) for f in faults] + [("overall", self.summary())]:
            if name == "overall":
                lines.append("-" * len(head))
            lines.append(f"{name:<20} {summary.n:>4} {_fmt(summary.hit1):>6} {_fmt(summary.hit3):>6} "
                         f"{_fmt(summary.category):>8} {_fmt(summary.onset_median, 1):>9} "
                         f"{_fmt(summary.onset_p90, 1):>9} {_fmt(summary.recall):>6} {_fmt(summary.abstention):>7}")
        lines += ["", f"{'threshold':<44} {'value':>6} {'target':>8}  result"]
        for label, value, op, target, ok in self.checks():
            lines.append(f"{label:<44} {_fmt(value):>6} {op + ' ' + format(target, 'g'):>8}  "
                         f"{'PASS' if ok else 'FAIL'}")
        if self.resemblance is not None:
            r = self.resemblance
            lines += ["", f"similar incidents: precision@3 {r.precision_at_3:.2f}, top-1 {r.top1:.2f} over "
                          f"{r.members} incidents of recurring families (each with 3 siblings, a same-service and "
                          "a same-cause distractor)"]
        errors = sum(1 for o in self.outcomes if o.fetch_errors)
        lines += ["", "hit@k: the culprit deploy (or, without one, the cause's category) is among the first k ranked "
                  "causes; onset in minutes from the true onset;",
                  "recall: key events (culprit deploy, metric onset, first new error) cited in the timeline.",
                  f"{n} scenarios evaluated in {self.seconds:.1f} s ({self.seconds / max(n, 1):.2f} s each)"
                  + (f"; {errors} had fetch errors" if errors else "") + "."]
        return "\n".join(lines)


def _share(values) -> float | None:
    known = [bool(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run(n: int = 200, seed: int = DEFAULT_SEED, database_url: str | None = None,
        progress: Callable[[int, int], None] | None = None, family_count: int = 10) -> Report:
    """Generate n scenarios and run each through the database, the connectors over HTTP and the analysis; then
    measure similar-incident search on `family_count` recurring families (0: skip)."""
    began = time.perf_counter()
    scenarios = generate(n, seed)
    pairs = families(family_count, FAMILY_SIZE, seed) if family_count else []
    resemblance = None
    with tempfile.TemporaryDirectory(prefix="blametrail-eval-") as tmp, \
            ObservabilityServer([*scenarios, *(s for _, s in pairs)]) as server:
        settings = Settings(data_dir=Path(tmp), database_url=database_url or f"sqlite:///{tmp}/evaluation.db",
                            sqlite_synchronous="NORMAL", _env_file=None)
        engine = db.make_engine(settings)
        try:
            db.migrate(engine)
            factory = db.make_sessionmaker(engine)  # no dispatcher: nothing is queued
            wire_hooks(factory)
            box = SecretBox(_SECRET)
            now = max(s.resolved_at for s in [*scenarios, *(p for _, p in pairs)]) + timedelta(days=1)
            actor = setup(factory, box, server.url, now)
            outcomes = []
            for i, s in enumerate(scenarios, 1):
                outcomes.append(evaluate_one(factory, box, actor, s, now))
                if progress is not None:
                    progress(i, n)
            if pairs:
                resemblance = evaluate_families(factory, box, actor, pairs, now)
        finally:
            engine.dispose()
    return Report(seed=seed, outcomes=tuple(outcomes), seconds=time.perf_counter() - began, resemblance=resemblance)


FAMILY_SIZE = 4


def evaluate_families(factory: sessionmaker[Session], box: SecretBox, actor: Actor,
                      pairs: Sequence[tuple[str | None, Scenario]], now: datetime) -> Resemblance:
    """Record every family scenario, fingerprint it from its analysed evidence as a draft would, then ask for the
    incidents most like each family member and score the first three against its siblings."""
    family_of: dict[int, str | None] = {}
    for family, s in pairs:
        incident_id, _, pack, _ = recorded_pack(factory, box, actor, s, now)
        with db.transaction(factory) as session:
            similar.remember(session, session.get(Incident, incident_id), similarity.from_pack(pack), now)
        family_of[incident_id] = family
    precisions, tops = [], []
    with db.transaction(factory) as session:
        for incident_id, family in family_of.items():
            if family is None:
                continue
            found = similar.similar(session, session.get(Incident, incident_id), limit=3)
            same = [family_of.get(f.incident_id) == family for f in found]
            precisions.append(sum(same) / 3)
            tops.append(bool(same and same[0]))
    return Resemblance(members=len(precisions), precision_at_3=sum(precisions) / max(len(precisions), 1),
                       top1=sum(tops) / max(len(tops), 1))


def signals() -> tuple[list[dict], list[dict]]:
    """Return the Prometheus and Loki signals an operator would configure, templated with `$service`."""
    metrics = [{"name": name, "kind": "metric", "query": query, "services": ["*"], "unit": METRICS[name]}
               for name, query in METRIC_QUERIES.items()]
    return metrics, [{"name": "logs", "kind": "log", "query": LOG_QUERY, "services": ["*"]}]


def setup(factory: sessionmaker[Session], box: SecretBox, endpoint: str, now: datetime) -> Actor:
    """Create the evaluation's organization, its on-call engineer, and Prometheus and Loki connections."""
    slug = f"eval-{uuid.uuid4().hex[:10]}"
    metrics, logs = signals()
    with db.transaction(factory) as session:
        org = orgs.create_org(session=session, slug=slug, name="Evaluation Shop", plan="pro", now=now)
        member = orgs.create_user(session=session, email=f"oncall@{slug}.example", org=org, role="owner",
                                  password=None, now=now, name="On-call SRE")
        actor = orgs.actor_for(member)
        # why: the endpoints are plain http, and skipping the CA bundle saves ~40 ms per request (httpx loads it
        # for every client, and the connectors make one client per request)
        options = {"verify_tls": False}
        integrations.create(session=session, actor=actor, box=box, now=now, data=ConnectionCreate(
            name="prod-prometheus", provider="prometheus", endpoint=endpoint, signals=metrics, options=options))
        integrations.create(session=session, actor=actor, box=box, now=now, data=ConnectionCreate(
            name="prod-loki", provider="loki", endpoint=endpoint, signals=logs, options=options))
    return actor


def record(session: Session, actor: Actor, s: Scenario, now: datetime, *, draft: bool = False,
           responders: Sequence[Actor] = ()) -> tuple[Incident, dict[str, str]]:
    """Record a scenario's deploys, incident and updates (posted by the responders in turn) and resolve it, queueing
    its postmortem only if asked. Return the incident and each scenario deploy key's evidence id."""
    keys = {}
    for d in s.deploys:
        row = deploys.create(session=session, actor=actor, now=now, data=DeployCreate(
            service=d.service, environment=d.environment, version=d.version, deployed_at=d.at,
            commits=[CommitIn(sha=c.sha, author=c.author, message=c.message, files=list(c.files), committed_at=c.at)
                     for c in d.commits]))
        keys[d.key] = ids.deploy_id(row.id)
    incident = incidents.create(session=session, actor=actor, now=now, data=IncidentCreate(
        title=s.title, severity=s.severity, services=list(s.services), started_at=s.started_at,
        description=s.description))
    responders = tuple(responders) or (actor,)
    for i, u in enumerate(s.updates):
        incidents.add_update(session=session, actor=responders[i % len(responders)], incident=incident, now=now,
                             data=UpdateCreate(body=u.body, at=u.at))
    resolve = postmortems.resolve_incident if draft else incidents.resolve
    resolve(session=session, incident=incident, now=now, resolved_at=s.resolved_at, by_label=actor.label,
            by_user_id=actor.user_id)
    return incident, keys


def evaluate_one(factory: sessionmaker[Session], box: SecretBox, actor: Actor, s: Scenario,
                 now: datetime) -> Outcome:
    """Run one scenario through the drafting path (pack, fetch over HTTP, analysis, built-in writer); score it."""
    _, keys, pack, errors = recorded_pack(factory, box, actor, s, now)
    return score(s, pack, write_postmortem(pack), keys, tuple(errors))


def recorded_pack(factory: sessionmaker[Session], box: SecretBox, actor: Actor, s: Scenario,
                  now: datetime) -> tuple[int, dict[str, str], EvidencePack, list[str]]:
    """Record a scenario and gather its evidence as a draft would (fetched over HTTP); return the incident id, the
    deploy keys' evidence ids, the pack and the fetch errors."""
    with db.transaction(factory) as session:
        incident, keys = record(session, actor, s, now)
        incident_id = incident.id
    with db.transaction(factory) as session:
        incident = session.get(Incident, incident_id)
        pack = build_pack(session=session, incident=incident, lookback_minutes=int(LOOKBACK.total_seconds() // 60),
                          now=now)
        tasks = integrations.plan_fetch(session=session, org_id=incident.org_id, services=incident.service_names,
                                        box=box)
    pack, errors = observe(pack, tasks)
    return incident_id, keys, pack, errors


def score(s: Scenario, pack: EvidencePack, draft: dict, keys: dict[str, str],
          errors: tuple[str, ...] = ()) -> Outcome:
    """Score a drafted postmortem against the scenario's ground truth."""
    scenario_key = {evidence: key for key, evidence in keys.items()}
    ranked = tuple(scenario_key.get(c.key, c.key) if c.kind == "deploy" else c.key for c in ranked_causes(pack))
    top = standout(ranked_suspects(pack))
    category = root_cause_category(pack)
    named = scenario_key.get(top.deploy_id, top.deploy_id) if top is not None else category
    truth = s.truth
    target = truth.culprit or (truth.category if truth.category not in (None, "deploy") else None)
    hit1 = None if target is None else ranked[:1] == (target,)
    hit3 = None if target is None else target in ranked[:3]
    if truth.category == "deploy":
        category_ok = top is not None and named == truth.culprit
    else:
        category_ok = top is None and category == truth.category
    level = draft["confidence"]["level"]
    return Outcome(
        scenario=s.id, fault=s.fault, hit1=hit1, hit3=hit3, category_ok=category_ok,
        onset_error=round(abs((incident_onset(pack) - truth.onset).total_seconds()) / 60, 2),
        recall=_recall(s, pack, draft, keys), abstained=(level == "low" and top is None) if target is None else None,
        named=named, confidence=level, ranked=ranked[:5], fetch_errors=errors)


def key_evidence(s: Scenario, pack: EvidencePack, keys: dict[str, str]) -> list[str | None]:
    """Return the evidence id of each of the scenario's key events (None where the evidence has none)."""
    found: list[str | None] = []
    for ev in s.truth.key_events:
        if ev.kind == "deploy":
            found.append(keys.get(ev.ref))
        elif ev.kind == "metric":
            found.append(next((m.id for m in pack.metrics if m.series == ev.ref and m.service == ev.service
                               and abs(m.onset - s.truth.onset) <= ONSET_MATCH), None))
        else:
            matching = [g for g in pack.logs if g.service == ev.service and ev.ref in log_text(g)]
            first = min(matching, key=lambda g: (g.first_seen is None, g.first_seen or s.started_at, g.id),
                        default=None)
            found.append(first.id if first is not None else None)
    return found


def _recall(s: Scenario, pack: EvidencePack, draft: dict, keys: dict[str, str]) -> float | None:
    """Return the share of the scenario's key events whose evidence the timeline cites."""
    if not s.truth.key_events:
        return None
    cited = {e for row in draft["timeline"] for e in row["evidence"]}
    return sum(e is not None and e in cited for e in key_evidence(s, pack, keys)) / len(s.truth.key_events)


def describe(outcomes: Sequence[Outcome]) -> str:
    """List outcomes one per line (for reading misses)."""
    return "\n".join(f"{o.scenario:<28} named={o.named!s:<12} conf={o.confidence:<6} onset_err={o.onset_error:>6.1f} "
                     f"recall={_fmt(o.recall)} ranked={','.join(o.ranked[:3])}" for o in outcomes)


def run_real(build_app: real_run.BuildApp, incidents: list[RealIncident] | None = None, *,
             database_url: str | None = None,
             progress: Callable[[int, int, RealOutcome], None] | None = None) -> RealReport:
    """Replay real incidents (default: all) through a temporary BlameTrail served over HTTP; score the drafts."""
    return real_run.run(build_app, incidents, database_url=database_url, progress=progress)
