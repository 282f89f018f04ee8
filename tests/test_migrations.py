"""Migrations create exactly the schema the models describe, and run twice without harm."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from blametrail import db
from blametrail.models import Base


def test_models_match_migrations(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrate_is_idempotent(settings):
    engine = db.make_engine(settings)
    db.migrate(engine)
    db.migrate(engine)
    engine.dispose()
