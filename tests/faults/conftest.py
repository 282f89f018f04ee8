"""Fault tests: each gets a process group whose logs are attached to the report when the test fails."""

from __future__ import annotations

import os

import pytest

from tests.faults.support import PASS_TWO_ONLY, PrivatePostgres, Procs, need, postgres_bindir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    group = getattr(item, "_fault_procs", None)
    if group is not None and report.failed:
        report.sections.append((f"process logs ({report.when})", group.report()))


@pytest.fixture
def procs(request, tmp_path):
    """Start processes for this test; all are stopped afterwards."""
    group = Procs(tmp_path / "logs")
    request.node._fault_procs = group
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def private_pg():
    """A private PostgreSQL cluster for the whole session (tests restart it; the shared server is never touched)."""
    if not os.environ.get("BLAMETRAIL_TEST_DATABASE_URL"):
        pytest.skip(PASS_TWO_ONLY)
    bindir = need(postgres_bindir(), "PostgreSQL's server binaries (initdb, pg_ctl)")
    pg = PrivatePostgres(bindir).init()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()
