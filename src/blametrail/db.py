"""Database engine, sessions, the shared model base and schema migration."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # why: IMMEDIATE takes the write lock up front, so read-then-write never deadlocks
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


Dispatcher = Callable[[str, tuple], None]


def make_sessionmaker(engine: Engine, dispatcher: Dispatcher | None = None) -> sessionmaker[Session]:
    """Return the session factory used by requests, jobs and the CLI; `dispatcher` enqueues deferred jobs."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info={"dispatcher": dispatcher})


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
