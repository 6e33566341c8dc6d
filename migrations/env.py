"""Alembic environment: the URL from the config or DATABASE_URL, metadata from every package."""

from __future__ import annotations

from alembic import context

from core.db import Base, compare_with_models, make_engine
from core.registry import import_modules
from core.settings import load_settings

import_modules("models")
config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().DATABASE_URL
if url.startswith("postgresql://"):
    url = "postgresql+psycopg://" + url.removeprefix("postgresql://")


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=compare_with_models,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
