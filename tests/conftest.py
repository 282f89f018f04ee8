"""Shared fixtures: a real database per test (SQLite, or PostgreSQL when configured), a frozen clock, the app."""

from __future__ import annotations

import os
import shutil
import socket
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from blametrail import db
from blametrail.clock import FrozenClock
from blametrail.models import Base
from blametrail.settings import Settings


def _own_servers_per_worker() -> None:
    """Give each pytest-xdist worker its own PostgreSQL database and Redis database (never two runs on one).

    The configured URLs name the run's database; worker gwN uses `<name>_gwN` (created here when missing) and Redis
    database `<n>` (gw0) or `<n> + 7 + N`. The environment is rewritten before any test reads it, so processes the tests start inherit
    the worker's own URLs. An unreachable server is left for the session fixtures to report (they fail the run).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    index = int(worker.removeprefix("gw") or 0)
    pg = os.environ.get("BLAMETRAIL_TEST_DATABASE_URL")
    if pg:
        url = make_url(pg)
        own = url.set(database=f"{url.database}_{worker}")
        try:
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": own.database}):
                    conn.execute(text(f'CREATE DATABASE "{own.database}"'))
            admin.dispose()
        except Exception:  # why: _check_reachable_pg fails the run with the reason once the session starts
            return
        os.environ["BLAMETRAIL_TEST_DATABASE_URL"] = own.render_as_string(hide_password=False)
    redis_url = os.environ.get("BLAMETRAIL_TEST_REDIS_URL")
    if redis_url:
        base, _, db_index = redis_url.rstrip("/").rpartition("/")
        if db_index.isdigit() and base.startswith("redis"):
            offset = 7 + index if index else 0  # why: gw1.. use 8.. so low neighbours (other runs' dbs) stay free
            os.environ["BLAMETRAIL_TEST_REDIS_URL"] = f"{base}/{(int(db_index) + offset) % 16}"


_own_servers_per_worker()
PG_URL = os.environ.get("BLAMETRAIL_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("BLAMETRAIL_TEST_REDIS_URL") or None
START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
_LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


@pytest.fixture(autouse=True, scope="session")
def _no_outside_network():
    """Fail any connection that leaves this machine: tests talk to local servers only."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_LOOPBACK):
            raise RuntimeError(f"test tried to reach {address!r}; only local servers are allowed")
        return real_connect(self, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


@pytest.fixture(autouse=True, scope="session")
def _cheap_argon2():
    """Real argon2id at its lowest cost in this process: tests create and sign in thousands of people, and the
    production cost (64 MiB, 3 passes: ~0.2 s of CPU per hash) would spend minutes of every run on it. A hash
    verifies with its own parameters, so accounts made either way sign in. tests/orgs/test_passwords.py pins the
    production cost; servers the tests start as processes keep it."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from blametrail.orgs import passwords

    production = passwords._hasher
    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
    passwords._hasher = lambda: cheap
    passwords._hasher.production = production
    yield
    passwords._hasher = production


def _check_reachable_pg(url: str) -> None:
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        pytest.exit(f"BLAMETRAIL_TEST_DATABASE_URL is set but unreachable: {exc}", returncode=3)


@pytest.fixture(scope="session")
def _schema(tmp_path_factory):
    """Migrate once per run: a template SQLite file, or the PostgreSQL test database."""
    if PG_URL:
        _check_reachable_pg(PG_URL)
        engine = db.make_engine(Settings(database_url=PG_URL))
        with engine.begin() as conn:  # why: a clean schema per run, whatever an earlier run left behind
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.migrate(engine)
        engine.dispose()
        return {"kind": "postgresql", "url": PG_URL}
    template = tmp_path_factory.mktemp("template") / "blametrail.db"
    engine = db.make_engine(Settings(database_url=f"sqlite:///{template}"))
    db.migrate(engine)
    engine.dispose()
    return {"kind": "sqlite", "template": template}


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(_schema, tmp_path) -> str:
    """A freshly emptied, migrated database for this test."""
    if _schema["kind"] == "postgresql":
        _truncate_pg(_schema["url"])
        return _schema["url"]
    path = tmp_path / "data" / "blametrail.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_schema["template"], path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, dev_mode=True, embedded_workers=0,
                    _env_file=None)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def rt(settings, clock):
    """A runtime whose queue runs jobs immediately in-process (huey's own in-memory twin)."""
    from blametrail.runtime import build_runtime

    runtime = build_runtime(settings, clock=clock, migrate=False, immediate=True, queue_url="memory://")
    yield runtime
    runtime.close()


@pytest.fixture
def app(settings, rt):
    from blametrail.app import create_app

    return create_app(settings, runtime=rt, background=False)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def factory(rt):
    """Build organizations, members and tokens directly through the services."""
    from tests.factories import Factory

    return Factory(rt)


@pytest.fixture(scope="session")
def redis_url():
    """The Redis URL for queue tests; a configured but unreachable Redis fails the run."""
    if not REDIS_URL:
        return None
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:
        pytest.exit(f"BLAMETRAIL_TEST_REDIS_URL is set but unreachable: {exc}", returncode=3)
    return REDIS_URL


def pytest_report_header(config):
    return [f"blametrail database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (per-test file)'}; "
            f"redis: {REDIS_URL or 'not configured (embedded SQLite queue)'}"]
