"""Database engine, sessions, the shared model base and schema migration."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, DateTime, Integer, MetaData, String, create_engine, event, inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from blametrail.errors import ValidationFailed
from blametrail.safejson import problem as json_problem
from blametrail.safejson import storable_text
from blametrail.settings import Settings

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MAX_INT = 2**31 - 1  # INTEGER columns (every id): PostgreSQL's int4 ends here, SQLite's integer goes further
UNICODE_MESSAGE = ("Text must be valid Unicode: a lone surrogate such as \\ud800 cannot be stored; "
                   "remove it and try again.")


class UTCDateTime(TypeDecorator):
    """Store UTC; always hand back aware UTC datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict: JSON, list: JSON}


def make_engine(settings: Settings, **kwargs) -> Engine:
    """Build the engine for the configured database (SQLite gets WAL and a busy timeout)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # why: FKs are off by default; WAL lets readers run during writes
            dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN IMMEDIATE
            cur = dbapi_conn.cursor()
            _use_wal(cur)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # why: IMMEDIATE takes the write lock up front, so read-then-write never deadlocks
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_nul_parameters)
    return engine


def _bad_text(value: object) -> str | None:
    """Return "nul" or "surrogate" if a statement's parameters (a row, many rows, flat values) hold such text."""
    # why: runs for every statement; a loop over a stack, not a recursion of generators (7 % of alert ingest's CPU)
    pending = [value]
    while pending:
        v = pending.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return "nul"
            if not storable_text(v):
                return "surrogate"
        elif isinstance(v, dict):
            pending.extend(v.values())
        elif isinstance(v, (list, tuple)):
            pending.extend(v)
    return None


def _refuse_nul_parameters(_conn, _cursor, _statement, parameters, _context, executemany) -> None:
    """Refuse text with a NUL character or a lone surrogate in any statement, a lookup as much as a write."""
    bad = _bad_text(parameters)
    if bad == "nul":  # PostgreSQL cannot take it
        raise ValidationFailed("Text cannot contain NUL characters (\\u0000); remove them and try again.",
                               [{"loc": ["request"], "msg": "contains NUL", "type": "nul_character"}])
    if bad == "surrogate":  # neither driver can encode it (UnicodeEncodeError, a 500)
        raise ValidationFailed(UNICODE_MESSAGE, [{"loc": ["request"], "msg": "not valid Unicode",
                                                  "type": "unicode_surrogate"}])


def _use_wal(cur) -> None:
    """Put the file in WAL mode (it stays so), waiting while another process switches a brand-new file."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            # why: changing the journal mode answers "database is locked" at once, without the busy timeout, while
            # another connection holds a lock: servers starting together on a new database hit this
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


Dispatcher = Callable[[str, tuple], None]


def make_sessionmaker(engine: Engine, dispatcher: Dispatcher | None = None) -> sessionmaker[Session]:
    """Return the session factory used by requests, jobs and the CLI; `dispatcher` enqueues deferred jobs."""
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info={"dispatcher": dispatcher})
    event.listen(factory, "before_flush", _refuse_unstorable)
    return factory


def _refuse_unstorable(session: Session, _context, _instances) -> None:
    """Refuse, before any SQL, a value one of the databases cannot store: the same 422 on SQLite and PostgreSQL."""
    # why: PostgreSQL rejects NUL characters in text, text longer than VARCHAR(n) and integers past int4 with a
    # DataError (a 500 that aborts the transaction); SQLite silently stores all three. Input reaches these columns
    # from many places (API, forms, webhook payloads, connector data), so the one place they all meet checks them.
    for obj in session.new:
        state = inspect(obj)
        _refuse_in(state.dict, _columns_of(state.mapper), None)  # loaded values only: never a lazy load in the flush
    for obj in session.dirty:
        state = inspect(obj)
        if state.committed_state:  # the attributes set since the last flush: only what this flush writes
            _refuse_in(state.dict, _columns_of(state.mapper), state.committed_state)


def refuse_unstorable_rows(model, rows: list[dict]) -> None:
    """The flush guard's checks for rows written by a bulk INSERT (which does not flush)."""
    columns = _columns_of(inspect(model))
    for row in rows:
        _refuse_in(row, columns, None)


_Column = tuple[str, str, int | None, bool]  # attribute, "table.attribute", String length, is an Integer
_COLUMNS: dict = {}


def _columns_of(mapper) -> list[_Column]:
    """Return what the flush guard checks of a mapper's columns (worked out once per mapper)."""
    columns = _COLUMNS.get(mapper)
    if columns is None:
        columns = []
        for attr in mapper.column_attrs:
            kind = attr.columns[0].type
            length = getattr(kind, "length", None) if isinstance(kind, String) else None
            columns.append((attr.key, f"{mapper.local_table.name}.{attr.key}", length, isinstance(kind, Integer)))
        _COLUMNS[mapper] = columns
    return columns


def _refuse_in(values: dict, columns: list[_Column], only: dict | None) -> None:
    for key, where, length, integer in columns:
        if only is not None and key not in only:
            continue
        value = values.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            if "\x00" in value:
                raise ValidationFailed(f"Text cannot contain NUL characters (\\u0000): {where} has one.",
                                       [{"loc": [where], "msg": "contains NUL", "type": "nul_character"}])
            if not storable_text(value):
                raise ValidationFailed(f"{where}: {UNICODE_MESSAGE}",
                                       [{"loc": [where], "msg": "not valid Unicode", "type": "unicode_surrogate"}])
            if length and len(value) > length:
                raise ValidationFailed(f"{where} is longer than {length} characters.",
                                       [{"loc": [where], "msg": f"at most {length} characters",
                                         "type": "string_too_long"}])
        elif isinstance(value, (dict, list)) and (reason := json_problem(value)):
            # why: a lone surrogate in a JSON column is stored as an escape and breaks every later read (a 500
            # when the page renders it); NaN breaks PostgreSQL; a deep value breaks json.dumps (RecursionError)
            raise ValidationFailed(f"{where} cannot be stored: {reason}.",
                                   [{"loc": [where], "msg": reason, "type": "json_unstorable"}])
        elif integer and isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
            raise ValidationFailed(f"{where} is out of range: {value}.",
                                   [{"loc": [where], "msg": "out of range", "type": "int_out_of_range"}])


def fit(column, text: str | None, *, limit: int | None = None) -> str | None:
    """Return system-written text a column can store: NUL and lone surrogates replaced, cut to its length with "…"."""
    # why: the flush guard refuses such text with a 422, right for a person's input but fatal for a job that writes
    # what a remote server or an exception said (a monitor's check error, a connector's failure)
    if text is None:
        return None
    text = str(text).replace("\x00", "\ufffd")
    if not storable_text(text):
        text = text.encode("utf-8", "replace").decode("utf-8")
    lengths = [n for n in (getattr(getattr(column, "type", None), "length", None), limit) if n]
    if lengths and len(text) > min(lengths):
        text = text[: min(lengths) - 1] + "…"
    return text


def dialect_insert(session: Session, model):
    """Return an INSERT of `model` in the session's dialect, which has on_conflict_do_nothing (SQLite and PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


def defer(session: Session, task: str, *args: object) -> None:
    """Ask for a job to be enqueued once this session's transaction commits (never before)."""
    session.info.setdefault("deferred", []).append((task, args))


def memo(session: Session) -> dict:
    """Return a scratch dict that lives until this session's transaction commits or rolls back."""
    return session.info.setdefault("memo", {})


def commit(session: Session) -> None:
    """Commit, then hand the deferred jobs to the dispatcher (a failure there leaves the row for the sweep)."""
    session.commit()
    session.info["memo"] = {}
    jobs, session.info["deferred"] = session.info.get("deferred", []), []
    dispatcher = session.info.get("dispatcher")
    for task, args in jobs:
        if dispatcher is None:
            continue
        try:
            dispatcher(task, args)
        except Exception:  # why: the row is committed; the sweep re-enqueues it when the queue is back
            log.exception("could not enqueue %s%r; the sweep will retry", task, args)


def rollback(session: Session) -> None:
    """Roll back and forget deferred jobs."""
    session.rollback()
    session.info["deferred"] = []
    session.info["memo"] = {}


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit on success (then enqueue deferred jobs), roll back on error."""
    session = factory()
    try:
        yield session
        commit(session)
    except BaseException:
        rollback(session)
        raise
    finally:
        session.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (safe to call from several processes at once)."""
    from alembic import command
    from alembic.config import Config

    here = Path(__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")
