"""Suspect deploys: rank deploys before onset by time to onset, service match, responders' words and findings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from blametrail.analysis.corroboration import Findings, corroborate, findings, metric_phrase
from blametrail.analysis.evidence import CommitEvidence, DeployEvidence, EvidencePack
from blametrail.analysis.response import FAILED, ROLLBACK, sorted_updates
from blametrail.analysis.text import clip, plural, sentences
from blametrail.analysis.times import minutes_between, stamp, utc

STANDOUT_SCORE = 0.4  # a service-matching deploy up to ~35 minutes before onset reaches this on its own
STANDOUT_MARGIN = 0.1
_HALF_LIFE_MINUTES = 60.0
_W_TIME, _W_SERVICE, _W_WORD, _MAX_WORDS = 0.3, 0.2, 0.04, 4
_W_VERSION, _W_SHA, _W_FILE, _W_ROLLBACK, _W_ROLLBACK_NEAR, _W_NO_EFFECT = 0.3, 0.35, 0.2, 0.35, 0.15, -0.3
_W_REVERTED = 0.25  # a later deploy put the previous version back: the deploy data itself implicates it
_ONSET_SLACK = timedelta(minutes=3)  # a deploy this soon after a metric onset may still have caused it
_WORD = re.compile(r"[a-z][a-z0-9]{3,}")
_SHA = re.compile(r"\b[0-9a-f]{7,40}\b")
_ROLLBACK_TARGET = re.compile(r"\b(?:to|onto)\s+(?:version\s+)?v?\d[\w.\-]*", re.I)
_STOP = frozenset(
    """about after again also because been before being between both could does doing down during each
    error errors from have having here into just more most need only other over same should some still
    such than that their them then there these they this those through under until very were what when
    where which while will with would your deploy deployed deploys deployment release update updated
    updates incident issue issues change changes changed commit merge merged main master branch fix fixed
    fixes add added adds remove removed test tests src lib file files use used using""".split()
)


@dataclass(frozen=True)
class Suspect:
    """A deploy ranked as a possible trigger; commit_ids are ordered most relevant first."""

    deploy_id: str
    commit_ids: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]
    update_ids: tuple[str, ...] = ()  # updates that name or implicate this deploy
    matched_commit_ids: tuple[str, ...] = ()  # commits the incident's words or errors point at, best first
    evidence_ids: tuple[str, ...] = ()  # metric and log findings that support it


def words(text: str) -> set[str]:
    """Return the distinctive lower-case words of a text (no stop words, 4+ characters)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def deploy_terms(deploy: DeployEvidence) -> set[str]:
    """Return the distinctive words of a deploy's commit messages and file paths."""
    text = " ".join(c.message + " " + " ".join(c.files) for c in deploy.commits)
    return words(text) - words(deploy.service)


def names_deploy(text: str, deploy: DeployEvidence) -> bool:
    """Tell whether a text names the deploy's version, a commit sha or file, or shares its commits' words."""
    return (
        _version_hit(text, deploy.version)
        or any(_sha_hit(text, c) or any(_file_hit_path(text, p) for p in c.files) for c in deploy.commits)
        or bool(words(text) & deploy_terms(deploy))
    )


def find_deploy(pack: EvidencePack, deploy_id: str) -> DeployEvidence | None:
    """Return the deploy with this evidence id, if any."""
    return next((d for d in pack.deploys if d.id == deploy_id), None)


def find_commit(pack: EvidencePack, commit_id: str) -> CommitEvidence | None:
    """Return the commit with this evidence id, if any."""
    return next((c for d in pack.deploys for c in d.commits if c.id == commit_id), None)


def affects_incident(pack: EvidencePack, deploy: DeployEvidence) -> bool:
    """Tell whether the deploy is of one of the incident's services (any service if none are recorded)."""
    services = {s for s in pack.incident.services if s.strip()}
    return not services or deploy.service in services


def in_window(pack: EvidencePack, deploy: DeployEvidence) -> bool:
    """Tell whether the deploy happened inside the evidence window."""
    return utc(pack.window_start) <= utc(deploy.deployed_at) <= utc(pack.window_end)


def rollback_deploys(pack: EvidencePack) -> tuple[DeployEvidence, ...]:
    """Return deploys after onset that put back a version the same service ran earlier."""
    start = utc(pack.incident.started_at)
    ordered = sorted(pack.deploys, key=lambda d: (utc(d.deployed_at), d.id))
    return tuple(
        d for i, d in enumerate(ordered)
        if utc(d.deployed_at) > start and in_window(pack, d)
        and any(e.service == d.service and e.version == d.version for e in ordered[:i])
    )


def standout(suspects: tuple[Suspect, ...]) -> Suspect | None:
    """Return the top suspect if it scores high enough and clearly above the next one."""
    if not suspects or suspects[0].score < STANDOUT_SCORE:
        return None
    if len(suspects) > 1 and suspects[0].score - suspects[1].score < STANDOUT_MARGIN:
        return None
    return suspects[0]


def describe_suspect(pack: EvidencePack, suspect: Suspect) -> tuple[str, list[str]]:
    """Describe a suspect deploy and its best-matching commit in blameless prose; return (text, evidence ids)."""
    deploy = find_deploy(pack, suspect.deploy_id)
    if deploy is None:
        return f"deploy {suspect.deploy_id}", [suspect.deploy_id]
    minutes = minutes_between(deploy.deployed_at, findings(pack).onset)
    text = (f"deploy {deploy.version} of {deploy.service} to {deploy.environment} at {stamp(deploy.deployed_at)}"
            f" ({plural(minutes, 'minute')} before onset)")
    cited = list(suspect.matched_commit_ids[:3] or suspect.commit_ids[:1])
    commit = find_commit(pack, cited[0]) if cited else None
    if commit is not None:
        count = len(deploy.commits)
        lead = "which shipped" if count == 1 else (
            f"which shipped {count} commits, best matching" if suspect.matched_commit_ids
            else f"which shipped {count} commits, including")
        message = clip(commit.message.splitlines()[0] if commit.message.strip() else "no message", 120)
        author = f", authored by {commit.author}" if commit.author else ""
        text += f", {lead} a change in commit {commit.sha[:7]} (“{message}”{author})"
    return text, [deploy.id, *cited]


@dataclass(frozen=True)
class _Context:
    start: datetime
    texts: list[tuple[str, str]]  # (update id, sentence) without rollback targets or futile rollbacks
    rollbacks: list[tuple[str, str]]  # rollback sentences that did not fail
    futile: list[tuple[str, str]]  # rollback sentences that say it did not help
    words: set[str]
    latest: dict[str, str]  # service -> id of its last deploy before onset
    reverted: dict[str, DeployEvidence]  # deploy id -> the later deploy that put an earlier version back
    found: Findings
    corpus: str = ""  # every text, lower-cased: a needle missing here is in no text (skips the per-text scans)

    def mentions(self, needle: str) -> bool:
        """Tell whether any text could mention `needle` (a cheap substring test before the exact ones)."""
        return bool(needle) and needle.lower() in self.corpus


def rank_suspects(pack: EvidencePack) -> tuple[Suspect, ...]:
    """Rank deploys at or before onset inside the window as suspects, best first."""
    found = findings(pack)
    start = utc(pack.incident.started_at)
    # A metric change point is firm enough to exclude deploys after it; a first error burst is not.
    cutoff = min(start, found.onset + _ONSET_SLACK) if found.onset_metric is not None else start
    candidates = [d for d in pack.deploys if utc(pack.window_start) <= utc(d.deployed_at) <= cutoff]
    latest: dict[str, str] = {}
    for deploy in sorted(candidates, key=lambda d: (utc(d.deployed_at), d.id)):
        latest[deploy.service] = deploy.id
    by_id = {d.id: d for d in candidates}
    reverted = {
        latest[r.service]: r for r in reversed(rollback_deploys(pack))
        if r.service in latest and by_id[latest[r.service]].version != r.version
    }
    # In "rolled back checkout v2.3 to v2.2" the version after "to" is the known-good target, not a suspect;
    # a rollback that "didn't help" speaks for the deploy, so it never counts as naming it.
    said = [
        (u.id, _ROLLBACK_TARGET.sub(" ", s) if ROLLBACK.search(s) else s)
        for u in sorted_updates(pack) for s in sentences(u.body)
    ]
    futile = [(uid, s) for uid, s in said if ROLLBACK.search(s) and FAILED.search(s)]
    texts = [pair for pair in said if pair not in futile]
    inc = pack.incident
    context = _Context(
        start=found.onset, texts=texts, rollbacks=[(uid, s) for uid, s in texts if ROLLBACK.search(s)], futile=futile,
        words=words(" ".join([inc.title, inc.description, *(s for _, s in texts)])),
        latest=latest, reverted=reverted, found=found, corpus="\n".join(s for _, s in texts).lower(),
    )
    ranked = [s for d in candidates if (s := _score(pack, d, context)) is not None]
    return tuple(sorted(ranked, key=lambda s: (-s.score, -utc(by_id[s.deploy_id].deployed_at).timestamp(),
                                               s.deploy_id)))


def _score(pack: EvidencePack, deploy: DeployEvidence, ctx: _Context) -> Suspect | None:
    minutes = minutes_between(deploy.deployed_at, ctx.start)
    score = _W_TIME * 0.5 ** (minutes / _HALF_LIFE_MINUTES)
    onset, burst = ctx.found.onset_metric, ctx.found.onset_log
    if onset is not None or burst is not None:
        what = metric_phrase(onset) if onset is not None else f"the first errors appeared ({burst.id})"
        reasons = [f"deployed {plural(minutes, 'minute')} before the onset, when {what}"
                   if minutes else f"deployed at the onset, when {what}"]
    else:
        reasons = ["deployed at the incident start" if minutes == 0
                   else f"deployed {plural(minutes, 'minute')} before the incident started"]
    eligible = affects_incident(pack, deploy)
    if eligible and pack.incident.services:
        score += _W_SERVICE
        reasons.append(f"{deploy.service} is an affected service")
    named: dict[str, None] = {}  # update ids, ordered, that name this deploy
    relevance = {c.id: 0 for c in deploy.commits}

    def hit(weight: float, uid: str, reason: str) -> None:
        nonlocal score
        score += weight
        reasons.append(reason)
        named.setdefault(uid)

    # why: each test below is a regex per text; with thousands of updates and hundreds of deploys they are run only
    # when the version, commit or file name appears somewhere at all
    core = deploy.version.strip().removeprefix("v").removeprefix("V")
    uid = _first(ctx.texts, lambda body: _version_hit(body, deploy.version)) if ctx.mentions(core) else None
    if uid:
        hit(_W_VERSION, uid, f"update {uid} names version {deploy.version}")
    for commit in deploy.commits:
        uid = _first(ctx.texts, lambda body, c=commit: _sha_hit(body, c)) if ctx.mentions(commit.sha[:7]) else None
        if uid:
            hit(_W_SHA, uid, f"update {uid} mentions commit {commit.sha[:7]}")
            relevance[commit.id] += 3
        for path in commit.files:
            if not ctx.mentions(path.rsplit("/", 1)[-1]):
                continue
            uid = _first(ctx.texts, lambda body, p=path: _file_hit_path(body, p))
            if uid:
                hit(_W_FILE, uid, f"update {uid} mentions {path}")
                relevance[commit.id] += 2
                break
    is_latest = ctx.latest.get(deploy.service) == deploy.id
    rollbacks = ctx.rollbacks

    def rolled_back(sentence: str) -> bool:
        return _version_hit(sentence, deploy.version) or (is_latest and _named(sentence, deploy.service))

    uid = _first(rollbacks, rolled_back)
    no_effect = _first(ctx.futile, rolled_back)
    if no_effect:
        # Rolling it back did not help: that speaks against this deploy.
        score += _W_NO_EFFECT
        reasons.append(f"update {no_effect} says rolling back {deploy.service} did not help")
    elif uid:
        hit(_W_ROLLBACK, uid, f"update {uid} describes rolling back {deploy.service}")
    elif rollbacks and eligible and is_latest:
        uid = rollbacks[0][0]
        hit(_W_ROLLBACK_NEAR, uid, f"update {uid} mentions a rollback; this was the last {deploy.service} "
                                   "deploy before onset")
    if deploy.id in ctx.reverted and not no_effect:
        undo = ctx.reverted[deploy.id]
        score += _W_REVERTED
        reasons.append(f"{undo.id} put {deploy.service} back to {undo.version} after onset")
    backing = corroborate(pack, deploy, ctx.found)
    if not eligible and not named and backing.strength != "strong":
        return None  # another service's deploy is blamed only when responders name it or errors point into it
    score += backing.delta
    reasons.extend(backing.reasons)
    for commit_id, weight in backing.commit_hits:
        relevance[commit_id] += weight
    shared = sorted(deploy_terms(deploy) & ctx.words)[:_MAX_WORDS]
    if shared:
        score += _W_WORD * len(shared)
        reasons.append("its commits share words with the incident: " + ", ".join(shared))
    for commit in deploy.commits:
        own = words(commit.message + " " + " ".join(commit.files)) - words(deploy.service)
        relevance[commit.id] += len(own & ctx.words)
    ordered = sorted(deploy.commits, key=lambda c: -relevance[c.id])
    return Suspect(
        deploy_id=deploy.id,
        commit_ids=tuple(c.id for c in ordered),
        score=round(min(max(score, 0.0), 1.0), 3),
        reasons=tuple(reasons),
        update_ids=tuple(named),
        matched_commit_ids=tuple(c.id for c in ordered if relevance[c.id] > 0),
        evidence_ids=backing.evidence_ids,
    )


def _first(texts: list[tuple[str, str]], test: Callable[[str], bool]) -> str | None:
    return next((uid for uid, text in texts if test(text)), None)


def _named(text: str, name: str) -> bool:
    return bool(name.strip()) and re.search(
        r"(?<![\w-])" + re.escape(name.strip()) + r"(?![\w-])", text, re.I
    ) is not None


def _version_hit(text: str, version: str) -> bool:
    core = version.strip().removeprefix("v").removeprefix("V")
    # Bare short numbers ("42") would match unrelated counts; require a dotted or longer version.
    if not core or ("." not in core and "-" not in core and len(core) < 6):
        return False
    return re.search(r"(?<![\w.])v?" + re.escape(core) + r"(?![\w]|\.\w)", text, re.I) is not None


def _sha_hit(text: str, commit: CommitEvidence) -> bool:
    sha = commit.sha.lower()
    return len(sha) >= 7 and any(sha.startswith(token) for token in _SHA.findall(text.lower()))


def _file_hit_path(text: str, path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    names = {path, base} if "." in base and len(base) >= 5 else {path}
    return any(_named(text, name) for name in names if name)
