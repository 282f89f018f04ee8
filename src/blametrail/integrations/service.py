"""Observability connections: CRUD with encrypted credentials, the connection test, and fetching evidence."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.analysis.observations import LogLine, Series
from blametrail.crypto import SecretBox
from blametrail.errors import Conflict, NotFound, UpstreamError
from blametrail.integrations.base import REGISTRY, Connector, Limits, Signal, connector_for
from blametrail.integrations.common import sanitize
from blametrail.integrations.models import Connection
from blametrail.integrations.provider import Provider, fail
from blametrail.integrations.schemas import ConnectionCreate, ConnectionUpdate, SignalIn
from blametrail.netguard import OutboundPolicy
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor

log = logging.getLogger(__name__)

ERROR_LIMIT = 2000  # characters of a stored test error (the column is unbounded text)


def provider_of(name: str) -> Provider:
    """Return a provider's description from the registry, or refuse the name."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise fail(["body", "provider"], f"unknown provider {name!r}; use one of {', '.join(REGISTRY)}") from None


def _endpoint(provider: Provider, value: str, policy: OutboundPolicy | None = None) -> str:
    return provider.endpoint(provider, (value or "").strip(), policy)


def _credentials(provider: Provider, creds: dict[str, str] | None) -> dict[str, str]:
    creds = {k: v for k, v in (creds or {}).items() if v is not None and str(v) != ""}
    loc = ["body", "credentials"]
    allowed = provider.credential_names
    unknown = sorted(set(creds) - set(allowed))
    if unknown:
        raise fail(loc, f"unknown credential field(s) {', '.join(unknown)} for {provider.name}; use {', '.join(allowed)}")
    provider.credentials(creds, loc)
    return creds


def _options(provider: Provider, options: dict | None, policy: OutboundPolicy | None = None) -> dict:
    allowed = provider.all_options()
    out = {}
    for key, value in (options or {}).items():
        loc = ["body", "options", key]
        if key not in allowed:
            raise fail(loc, f"unknown option for {provider.name}; use one of {', '.join(sorted(allowed))}")
        if value is None:
            continue
        option = allowed[key]
        kind, low, high = option.kind, option.low, option.high
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise fail(loc, f"must be a {kind.__name__}")
        if kind in (int, float) and not low <= value <= high:
            raise fail(loc, f"must be between {low} and {high}")
        if kind is str and not low <= len(value) <= high:
            raise fail(loc, f"must be {low}–{high} characters")
        if option.check is not None:
            value = option.check(provider, value, loc, policy)
        out[key] = value
    return out


def _signals(provider: Provider, signals: Iterable[SignalIn]) -> list[dict]:
    out, names = [], set()
    for i, signal in enumerate(signals):
        loc = ["body", "signals", i]
        if signal.name in names:
            raise fail(loc + ["name"], f"signal name {signal.name!r} is used twice")
        names.add(signal.name)
        if signal.kind not in provider.kinds:
            raise fail(loc + ["kind"], f"{provider.name} signals can only be: {', '.join(provider.kinds)}")
        query = provider.query(provider, signal.kind, signal.query, loc + ["query"])
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
    provider = provider_of(data.provider)
    if provider.dev_only and not allow_fake:
        raise fail(["body", "provider"], f"the {provider.name} provider is for development mode and tests only")
    connection = Connection(
        org_id=actor.org_id, name=data.name, provider=provider.name, endpoint=_endpoint(provider, data.endpoint, policy),
        credentials_encrypted=_encrypt(_credentials(provider, data.credentials), box),
        signals=_signals(provider, data.signals), options=_options(provider, data.options, policy),
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
    provider = provider_of(connection.provider)
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
