"""Migrations create exactly the schema the models describe, and run twice without harm."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from blametrail import db
from blametrail.learning.models import mapped_in_models
from blametrail.models import Base


def test_models_match_migrations(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": mapped_in_models}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrate_is_idempotent(settings):
    engine = db.make_engine(settings)
    db.migrate(engine)
    db.migrate(engine)
    engine.dispose()
