"""Four servers starting at once on an empty database migrate it exactly once, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from tests.faults.support import ROOT, blametrail_env, free_port, healthy, wait_until

pytestmark = pytest.mark.slow
COMMANDS = (["serve"], ["serve"], ["serve"], ["db", "upgrade"])  # three servers and an operator's `db upgrade`
PROBLEMS = re.compile(r"Traceback|ERROR|error:|already exists|deadlock|database is locked", re.IGNORECASE)


def _head() -> str:
    return ScriptDirectory(str(ROOT / "src/blametrail/migrations")).get_current_head()


def _start_all_at_once(procs, env: dict) -> list[tuple[object, str | None]]:
    """Start the four commands warm, then let them all go in the same instant; return (process, base URL)."""
    started = []
    for i, command in enumerate(COMMANDS):
        if command == ["serve"]:
            port = free_port()
            proc = procs.launcher(f"serve{i}", "serve", "--port", str(port), env=env, wait_go=True)
            started.append((proc, f"http://127.0.0.1:{port}"))
        else:
            started.append((procs.launcher(f"upgrade{i}", *command, env=env, wait_go=True), None))
    for proc, _ in started:
        proc.wait_ready()
    for proc, _ in started:
        proc.go()
    return started


def _all_up(started) -> None:
    for proc, base in started:
        if base is None:
            assert proc.popen.wait(timeout=120) == 0, proc.tail()
            assert "database is up to date" in proc.log()
        else:
            wait_until(lambda: healthy(base), what=f"{proc.name} to answer", watch=[proc])
    for proc, _ in started:
        assert not PROBLEMS.search(proc.log()), f"{proc.name} logged a problem:\n{proc.tail()}"


def _check_migrated_once(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
            tables = set(inspect(conn).get_table_names())
        assert {"organization", "incident", "postmortem", "generation_run"} <= tables
    finally:
        engine.dispose()


def test_four_servers_on_an_empty_sqlite_file_migrate_it_once(procs, tmp_path):
    if os.environ.get("BLAMETRAIL_TEST_DATABASE_URL"):
        pytest.skip("runs in the SQLite pass only (it never uses the configured database)")
    data = tmp_path / "fresh"
    url = f"sqlite:///{data / 'blametrail.db'}"
    assert not data.exists()
    started = _start_all_at_once(procs, blametrail_env(data_dir=data, database_url=url, embedded_workers=1))
    _all_up(started)
    _check_migrated_once(url)


def test_four_servers_on_an_empty_postgresql_database_migrate_it_once(procs, private_pg):
    procs.extra_logs.append(("postgres", private_pg.log_path))
    url = private_pg.create_database(f"migrate_{uuid.uuid4().hex[:8]}")
    started = _start_all_at_once(procs, blametrail_env(data_dir=procs.log_dir / "data", database_url=url,
                                                       embedded_workers=1))
    _all_up(started)
    _check_migrated_once(url)
