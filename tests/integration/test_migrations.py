"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import core.persistence.tables  # noqa: F401  (registers the tables)
from core.persistence import migrate


def test_the_schema_after_migrating_matches_the_tables(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    assert migrate.current(engine) == migrate.head()
