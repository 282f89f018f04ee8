"""The gate admitting a bounded number of database users at once (requests, stored idempotent responses)."""

from __future__ import annotations

import asyncio

# why: a request keeps its transaction (SQLite's write lock, PostgreSQL row locks) across several worker-thread
# hops (auth dependency, handler, response validation). When every worker thread is blocked waiting for that
# lock, the holder never gets a thread back and all of them stall until the busy/pool timeout (HTTP 500).
# Admitting fewer requests to the database than anyio's 40 worker threads always leaves one for the holder.
MAX_DB_REQUESTS = 32


def db_gate(app) -> asyncio.Semaphore:
    """Return the app's gate admitting at most MAX_DB_REQUESTS database users at once (requests, response stores)."""
    gate = getattr(app.state, "db_gate", None)
    if gate is None:
        gate = app.state.db_gate = asyncio.Semaphore(MAX_DB_REQUESTS)
    return gate
