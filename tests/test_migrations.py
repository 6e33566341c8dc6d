"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.db import Base, compare_with_models, make_engine
from core.migrate import alembic_config
from core.registry import import_modules


def test_migrations_match_the_models(database_url: str) -> None:
    import_modules("models")
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": compare_with_models}
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_one_migration_head(database_url: str) -> None:
    heads = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
    assert len(heads) == 1, f"several heads {heads}: add a merge migration"
