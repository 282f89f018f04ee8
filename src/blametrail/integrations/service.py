"""Observability connections: CRUD with encrypted credentials, the connection test, and fetching evidence."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.analysis.observations import LogLine, Series
from blametrail.crypto import SecretBox
from blametrail.errors import Conflict, NotFound, UpstreamError, ValidationFailed
from blametrail.integrations.base import Connector, Limits, Signal, connector_for
from blametrail.integrations.cloudwatch import STATS
from blametrail.integrations.common import public_error, sanitize
from blametrail.integrations.models import Connection
from blametrail.integrations.datadog import api_host
from blametrail.integrations.schemas import ConnectionCreate, ConnectionUpdate, SignalIn
from blametrail.netguard import OutboundPolicy, has_userinfo, redact_userinfo
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor

log = logging.getLogger(__name__)

CREDENTIAL_KEYS = {
    "prometheus": ("token", "username", "password"),
    "loki": ("token", "username", "password"),
    "datadog": ("api_key", "app_key"),
    "cloudwatch": ("access_key_id", "secret_access_key", "session_token"),
    "fake": ("token",),
}
KINDS = {"prometheus": ("metric",), "loki": ("metric", "log"), "datadog": ("metric", "log"),
         "cloudwatch": ("metric", "log"), "fake": ("metric", "log")}
_COMMON_OPTIONS = {"timeout_seconds": (float, 0.1, 300), "max_series": (int, 1, 10_000), "max_points": (int, 10, 11_000),
                   "max_lines": (int, 1, 100_000), "verify_tls": (bool, None, None)}
PROVIDER_OPTIONS = {
    "prometheus": {},
    "loki": {"tenant": (str, 1, 200)},
    "datadog": {},
    "cloudwatch": {"endpoint_url": (str, 1, 2000)},
    "fake": {"series": (list, None, None), "logs": (list, None, None), "fail": (str, 0, 2000)},
}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_SITE = re.compile(r"^[a-z0-9]+([.-][a-z0-9]+)*\.[a-z]{2,}$")
_PERIODS = (1, 5, 10, 30)
ERROR_LIMIT = 2000  # characters of a stored test error (the column is unbounded text)


def _fail(loc: list, msg: str) -> ValidationFailed:
    return ValidationFailed(f"{'.'.join(str(p) for p in loc)}: {msg}", [{"loc": loc, "msg": msg}])


def _http_url(value: str, loc: list) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        raise _fail(loc, f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise _fail(loc, "give an http:// or https:// URL with a host")
    return value.rstrip("/")


def _no_credentials(value: str, loc: list, provider: str) -> str:
    """Refuse a URL with credentials before its host: they belong in the encrypted credential fields."""
    if has_userinfo(value):
        fields = " or ".join(CREDENTIAL_KEYS.get(provider, ("token",)))
        raise _fail(loc, "the URL carries credentials (user:password@ before the host), which would be stored in plain "
                         f"text and shown to everyone in the organization; remove them and put them in the "
                         f"connection's credentials ({fields}), which are stored encrypted and never shown")
    return value


def _reachable(url: str, loc: list, policy: OutboundPolicy | None) -> str:
    """Refuse a URL the SSRF guard would refuse from its spelling alone (no DNS: the host may not resolve yet)."""
    sentence = (policy or OutboundPolicy()).refusal_for_url(url)
    if sentence:
        raise _fail(loc, sentence)
    return url


def _endpoint(provider: str, value: str, policy: OutboundPolicy | None = None) -> str:
    value = (value or "").strip()
    loc = ["body", "endpoint"]
    if provider in ("prometheus", "loki"):
        if not value:
            raise _fail(loc, f"give the {provider.title()} base URL, e.g. http://{provider}:"
                             f"{9090 if provider == 'prometheus' else 3100}")
        return _reachable(_http_url(_no_credentials(value, loc, provider), loc), loc, policy)
    if provider == "datadog":
        if "://" in value:
            return _reachable(_http_url(_no_credentials(value, loc, provider), loc), loc, policy)
        if value and not _SITE.match(value.lower()):
            raise _fail(loc, "give a Datadog site such as datadoghq.com, datadoghq.eu or us5.datadoghq.com")
        _reachable(api_host(value.lower()), loc, policy)
        return value.lower() or "datadoghq.com"
    if provider == "cloudwatch":
        if not _REGION.match(value):
            raise _fail(loc, "give the AWS region, e.g. us-east-1 or eu-west-1")
        return value
    return value


def _credentials(provider: str, creds: dict[str, str] | None) -> dict[str, str]:
    creds = {k: v for k, v in (creds or {}).items() if v is not None and str(v) != ""}
    loc = ["body", "credentials"]
    allowed = CREDENTIAL_KEYS[provider]
    unknown = sorted(set(creds) - set(allowed))
    if unknown:
        raise _fail(loc, f"unknown credential field(s) {', '.join(unknown)} for {provider}; use {', '.join(allowed)}")
    if provider in ("prometheus", "loki") and creds.get("token") and (creds.get("username") or creds.get("password")):
        raise _fail(loc, "give either a token or a username and password, not both")
    if provider in ("prometheus", "loki") and bool(creds.get("username")) != bool(creds.get("password")):
        raise _fail(loc, "basic auth needs both username and password")
    if provider == "datadog" and creds and not (creds.get("api_key") and creds.get("app_key")):
        raise _fail(loc, "Datadog needs both api_key and app_key")
    if provider == "cloudwatch" and bool(creds.get("access_key_id")) != bool(creds.get("secret_access_key")):
        raise _fail(loc, "give access_key_id and secret_access_key together (or neither, to use the IAM role)")
    if provider == "cloudwatch" and creds.get("session_token") and not creds.get("access_key_id"):
        raise _fail(loc, "a session_token needs access_key_id and secret_access_key")
    return creds


def _options(provider: str, options: dict | None, policy: OutboundPolicy | None = None) -> dict:
    allowed = {**_COMMON_OPTIONS, **PROVIDER_OPTIONS[provider]}
    out = {}
    for key, value in (options or {}).items():
        loc = ["body", "options", key]
        if key not in allowed:
            raise _fail(loc, f"unknown option for {provider}; use one of {', '.join(sorted(allowed))}")
        if value is None:
            continue
        kind, low, high = allowed[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _fail(loc, f"must be a {kind.__name__}")
        if kind in (int, float) and not low <= value <= high:
            raise _fail(loc, f"must be between {low} and {high}")
        if kind is str and not low <= len(value) <= high:
            raise _fail(loc, f"must be {low}–{high} characters")
        if key == "endpoint_url":
            value = _reachable(_http_url(_no_credentials(value, loc, provider), loc), loc, policy)
        out[key] = value
    return out


def _json_object(query, loc: list) -> dict:
    if isinstance(query, dict):
        return query
    try:
        value = json.loads(query)
    except ValueError as exc:
        raise _fail(loc, f"a CloudWatch query is a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise _fail(loc, "a CloudWatch query is a JSON object")
    return value


def _cloudwatch_query(kind: str, query, loc: list) -> dict:
    spec = _json_object(query, loc)
    if kind == "log":
        groups = spec.get("log_groups")
        if isinstance(groups, str):
            groups = [groups]
        if not groups or not all(isinstance(g, str) and g.strip() for g in groups):
            raise _fail(loc, 'a CloudWatch log signal needs "log_groups": a list of log group names (or ARNs)')
        unknown = set(spec) - {"log_groups", "filter_pattern"}
        if unknown:
            raise _fail(loc, f"unknown field(s) {', '.join(sorted(unknown))}; use log_groups and filter_pattern")
        if spec.get("filter_pattern") is not None and not isinstance(spec["filter_pattern"], str):
            raise _fail(loc, "filter_pattern must be a string")
        return {**spec, "log_groups": [g.strip() for g in groups]}
    unknown = set(spec) - {"namespace", "metric", "dimensions", "stat", "period", "unit", "expression"}
    if unknown:
        raise _fail(loc, f"unknown field(s) {', '.join(sorted(unknown))}; use namespace, metric, dimensions, stat, "
                         "period, unit, or expression")
    if not spec.get("expression") and not (spec.get("namespace") and spec.get("metric")):
        raise _fail(loc, 'a CloudWatch metric signal needs "namespace" and "metric" (or an "expression")')
    stat = spec.get("stat")
    if stat is not None and not (stat in STATS or re.match(r"^(p|tm|wm|tc|ts|pr)\d", str(stat))):
        raise _fail(loc, f"stat must be one of {', '.join(STATS)} or a percentile such as p99")
    period = spec.get("period")
    if period is not None and (not isinstance(period, int) or isinstance(period, bool) or period <= 0
                               or (period not in _PERIODS and period % 60)):
        raise _fail(loc, "period is 1, 5, 10, 30 or a multiple of 60 seconds")
    dims = spec.get("dimensions")
    if dims is not None and not isinstance(dims, (dict, list)):
        raise _fail(loc, 'dimensions is an object such as {"Service": "$service"}')
    return spec


def _signals(provider: str, signals: Iterable[SignalIn]) -> list[dict]:
    out, names = [], set()
    for i, signal in enumerate(signals):
        loc = ["body", "signals", i]
        if signal.name in names:
            raise _fail(loc + ["name"], f"signal name {signal.name!r} is used twice")
        names.add(signal.name)
        if signal.kind not in KINDS[provider]:
            raise _fail(loc + ["kind"], f"{provider} signals can only be: {', '.join(KINDS[provider])}")
        query = signal.query
        if provider == "cloudwatch":
            query = _cloudwatch_query(signal.kind, query, loc + ["query"])
        elif provider != "fake":
            if not isinstance(query, str):
                raise _fail(loc + ["query"], f"a {provider} query is a string")
            if provider == "loki" and signal.kind == "log" and not query.lstrip().startswith("{"):
                raise _fail(loc + ["query"], 'a LogQL log query starts with a stream selector, e.g. {app="$service"}')
        out.append({"name": signal.name, "kind": signal.kind, "query": query, "services": list(signal.services),
                    "unit": signal.unit})
    return out


# --- reads ---------------------------------------------------------------------------------------------------


def get_or_404(*, session: Session, org_id: int, connection_id: int) -> Connection:
    """Return the organization's connection or raise NotFound (other organizations' ids included)."""
    connection = session.scalar(select(Connection).where(Connection.id == connection_id, Connection.org_id == org_id))
    if connection is None:
        raise NotFound(f"Connection {connection_id} not found.")
    return connection


def list_connections(*, session: Session, org_id: int) -> list[Connection]:
    """Return the organization's connections by name."""
    return list(session.scalars(select(Connection).where(Connection.org_id == org_id).order_by(Connection.name)))


def credential_keys(connection: Connection, box: SecretBox) -> list[str]:
    """Return the names of the stored credential fields (never their values)."""
    if not connection.credentials_encrypted:
        return []
    try:
        return sorted(json.loads(box.decrypt(connection.credentials_encrypted)))
    except ValueError:
        return []


def to_read(connection: Connection, box: SecretBox, *, details: bool = True) -> dict:
    """Return the API shape of a connection: everything but the credentials; `details` for owners and admins only.

    Credentials written into a URL before they were refused never show; without `details`, the last test's error
    is only its kind and HTTP status (`public_error`).
    """
    options = dict(connection.options or {})
    if isinstance(options.get("endpoint_url"), str):
        options["endpoint_url"] = redact_userinfo(options["endpoint_url"])
    error = connection.last_test_error if details else public_error(connection.last_test_error)
    return {
        "id": connection.id, "name": connection.name, "provider": connection.provider,
        "endpoint": redact_userinfo(connection.endpoint),
        "has_credentials": bool(connection.credentials_encrypted), "credential_keys": credential_keys(connection, box),
        "signals": [{"unit": "", **s} for s in connection.signals or []], "options": options,
        "enabled": connection.enabled, "last_test_at": connection.last_test_at, "last_test_ok": connection.last_test_ok,
        "last_test_error": error, "created_at": connection.created_at, "updated_at": connection.updated_at,
    }


# --- writes --------------------------------------------------------------------------------------------------


def _name_free(session: Session, org_id: int, name: str, except_id: int | None = None) -> None:
    query = select(Connection.id).where(Connection.org_id == org_id, Connection.name == name)
    if except_id is not None:
        query = query.where(Connection.id != except_id)
    if session.scalar(query) is not None:
        raise Conflict(f"A connection named {name!r} already exists.")


def _encrypt(creds: dict[str, str], box: SecretBox) -> str | None:
    return box.encrypt(json.dumps(creds, sort_keys=True)) if creds else None


def create(*, session: Session, actor: Actor, data: ConnectionCreate, box: SecretBox, now: datetime,
           allow_fake: bool = False, policy: OutboundPolicy | None = None) -> Connection:
    """Add a connection (owner/admin); credentials are encrypted before they reach the database."""
    require(actor.role, Action.MANAGE)
    if data.provider == "fake" and not allow_fake:
        raise _fail(["body", "provider"], "the fake provider is for development mode and tests only")
    connection = Connection(
        org_id=actor.org_id, name=data.name, provider=data.provider, endpoint=_endpoint(data.provider, data.endpoint, policy),
        credentials_encrypted=_encrypt(_credentials(data.provider, data.credentials), box),
        signals=_signals(data.provider, data.signals), options=_options(data.provider, data.options, policy),
        enabled=data.enabled, created_by_user_id=actor.user_id, created_at=now, updated_at=now)
    _name_free(session, actor.org_id, data.name)
    session.add(connection)
    session.flush()
    return connection


def update(*, session: Session, actor: Actor, connection: Connection, data: ConnectionUpdate, box: SecretBox,
           now: datetime, policy: OutboundPolicy | None = None) -> Connection:
    """Change a connection (owner/admin); a new endpoint or credentials clear the last test result."""
    require(actor.role, Action.MANAGE)
    given = data.model_fields_set
    provider = connection.provider
    reach_changed = False
    if "name" in given and data.name is not None and data.name != connection.name:
        _name_free(session, connection.org_id, data.name, except_id=connection.id)
        connection.name = data.name
    if "endpoint" in given and data.endpoint is not None:
        endpoint = _endpoint(provider, data.endpoint, policy)
        reach_changed |= endpoint != connection.endpoint
        connection.endpoint = endpoint
    if "credentials" in given:
        connection.credentials_encrypted = _encrypt(_credentials(provider, data.credentials), box)
        reach_changed = True
    if "signals" in given and data.signals is not None:
        connection.signals = _signals(provider, data.signals)
    if "options" in given and data.options is not None:
        connection.options = _options(provider, data.options, policy)
        reach_changed = True
    if "enabled" in given and data.enabled is not None:
        connection.enabled = data.enabled
    if reach_changed:
        connection.last_test_at = connection.last_test_ok = connection.last_test_error = None
    connection.updated_at = now
    session.flush()
    return connection


def delete(*, session: Session, actor: Actor, connection: Connection) -> None:
    """Remove a connection (owner/admin)."""
    require(actor.role, Action.MANAGE)
    session.delete(connection)
    session.flush()


# --- the connection test -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestOutcome:
    """What a connection test found: ok with a description, or the actionable error."""

    __test__ = False  # not a pytest class
    ok: bool
    message: str | None = None
    error: str | None = None


def run_test(connector: Connector) -> TestOutcome:
    """Ask the backend whether it answers (network only: call it with no transaction open)."""
    try:
        return TestOutcome(ok=True, message=connector.test())
    except UpstreamError as exc:
        return TestOutcome(ok=False, error=str(exc))
    except Exception as exc:  # why: a connector bug must show as a failed test, not a server error
        log.exception("connection test crashed")
        return TestOutcome(ok=False, error=f"The test failed unexpectedly: {type(exc).__name__}: "
                                           f"{sanitize(str(exc))}")


def record_test(*, session: Session, connection: Connection, outcome: TestOutcome, now: datetime) -> Connection:
    """Store a test's outcome on the connection."""
    connection.last_test_at = now
    connection.last_test_ok = outcome.ok
    # why: a connector's words (an exception's text) may hold anything; a stored error must never fail the flush guard
    connection.last_test_error = None if outcome.ok else db.fit(Connection.last_test_error, outcome.error,
                                                                 limit=ERROR_LIMIT)
    session.flush()
    return connection


def test_connection(*, session: Session, actor: Actor, connection: Connection, box: SecretBox, now: datetime,
                    limits: Limits | None = None) -> TestOutcome:
    """Test a connection (owner/admin) and store the outcome; never raises for a backend failure."""
    require(actor.role, Action.MANAGE)
    try:
        connector = connector_for(connection, box, limits)
    except UpstreamError as exc:
        outcome = TestOutcome(ok=False, error=str(exc))
    else:
        outcome = run_test(connector)
    record_test(session=session, connection=connection, outcome=outcome, now=now)
    return outcome


test_connection.__test__ = False  # type: ignore[attr-defined]  # why: pytest must not collect it when imported


# --- fetching evidence ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchTask:
    """One signal of one connection for one service (or for no particular service)."""

    connection: str
    connector: Connector | None
    signal: Signal
    service: str | None
    setup_error: str | None = None


def plan_fetch(*, session: Session, org_id: int, services: Iterable[str], box: SecretBox,
               limits: Limits | None = None) -> list[FetchTask]:
    """Return the fetches the incident's services call for, from every enabled connection (reads only)."""
    services = sorted({s for s in services if s})
    tasks: list[FetchTask] = []
    rows = session.scalars(select(Connection).where(Connection.org_id == org_id, Connection.enabled.is_(True))
                           .order_by(Connection.name))
    for connection in rows:
        signals = [Signal.from_stored(s) for s in connection.signals or []]
        try:
            connector, setup_error = connector_for(connection, box, limits), None
        except UpstreamError as exc:
            connector, setup_error = None, str(exc)
        for signal in signals:
            targets = [s for s in services if signal.covers(s)]
            if signal.templated:
                chosen = targets
            elif targets or ("*" in signal.services and not services):
                chosen = [targets[0] if len(targets) == 1 else None]
            else:
                chosen = []
            tasks += [FetchTask(connection.name, connector, signal, svc, setup_error) for svc in chosen]
    return tasks


def _run(task: FetchTask, start: datetime, end: datetime, step_seconds: int,
         line_limit: int) -> tuple[list[Series], list[LogLine], str | None]:
    if task.setup_error:
        return [], [], task.setup_error
    try:
        if task.signal.kind == "log":
            return [], task.connector.logs(task.signal, task.service, start, end, line_limit), None
        return task.connector.metrics(task.signal, task.service, start, end, step_seconds), [], None
    except UpstreamError as exc:
        return [], [], str(exc)
    except Exception as exc:  # why: one broken backend or connector bug must not cost the other evidence
        log.exception("fetching %s/%s failed", task.connection, task.signal.name)
        return [], [], f"failed unexpectedly ({type(exc).__name__}: {sanitize(str(exc))})"


def collect(tasks: list[FetchTask], *, start: datetime, end: datetime, step_seconds: int = 60, line_limit: int = 2000,
            max_workers: int = 8) -> tuple[list[Series], list[LogLine], list[str]]:
    """Run fetch tasks in parallel (network only); return series, lines, and one error string per failure."""
    if not tasks:
        return [], [], []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(tasks))), thread_name_prefix="fetch") as pool:
        results = list(pool.map(lambda t: _run(t, start, end, step_seconds, line_limit), tasks))
    series: list[Series] = []
    lines: list[LogLine] = []
    failures: dict[tuple[str, str], list[str]] = {}
    for task, (got_series, got_lines, error) in zip(tasks, results, strict=True):
        series += got_series
        lines += got_lines
        if error:
            what = task.signal.name + (f" for {task.service}" if task.service else "")
            failures.setdefault((task.connection, error), []).append(what)
    # why: an unreachable backend fails every signal the same way; say it once, naming the evidence missed
    errors = [f"{name} ({', '.join(whats)}): {error}" for (name, error), whats in failures.items()]
    lines.sort(key=lambda line: line.at)
    return series, lines, errors


def fetch_observations(*, session: Session, org_id: int, services: Iterable[str], start: datetime, end: datetime,
                       box: SecretBox, step_seconds: int = 60, line_limit: int = 2000, limits: Limits | None = None,
                       max_workers: int = 8) -> tuple[list[Series], list[LogLine], list[str]]:
    """Fetch every enabled connection's matching signals for [start, end]; failures become error strings.

    The network part runs while the caller's transaction is open. Where that matters (SQLite holds its write
    lock for the whole transaction), call `plan_fetch` in a short transaction and `collect` after it ends.
    """
    try:
        tasks = plan_fetch(session=session, org_id=org_id, services=services, box=box, limits=limits)
    except Exception as exc:  # why: drafting must go on without observability data rather than fail
        log.exception("could not plan observability fetches")
        return [], [], [f"Observability connections could not be read: {exc}"]
    return collect(tasks, start=start, end=end, step_seconds=step_seconds, line_limit=line_limit,
                   max_workers=max_workers)
