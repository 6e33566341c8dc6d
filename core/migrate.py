"""Run the Alembic migrations programmatically (CLI, start script, tests)."""

from __future__ import annotations

import warnings

from alembic import command
from alembic.config import Config

from core.settings import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at ``migrations/`` and ``database_url``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the database schema up to ``revision`` (all heads by default)."""
    with warnings.catch_warnings():
        # SQLite batch migrations reflect tables, and SQLAlchemy cannot reflect the lower(email)
        # expression index of contacts (0106). Only the reflection is skipped: the index stays.
        warnings.filterwarnings(
            "ignore", message="Skipped unsupported reflection of expression-based index"
        )
        command.upgrade(alembic_config(database_url), revision)
