"""Alembic environment: runs on the engine handed over by blametrail.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from blametrail.learning.models import mapped_in_models
from blametrail.models import Base

MIGRATION_LOCK = 724_311_902  # PostgreSQL advisory lock id: several servers starting at once migrate once


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()
        try:
            sqlite = connection.dialect.name == "sqlite"
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
                include_object=mapped_in_models,
                # why: without transactional DDL alembic commits after each migration on SQLite, so a process starting
                # at the same time reads the version between two of them and runs the next one again ("already
                # exists"). One transaction (BEGIN IMMEDIATE: the write lock) around reading the version and every
                # migration makes the others wait, then find the schema at head.
                transactional_ddl=True if sqlite else None,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                connection.commit()


run_migrations_online()
