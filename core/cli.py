"""Flask CLI commands: migrations, draining the in-process queue, rotating the encryption of
secrets (``flask create-demo`` is added by campaigns.views)."""

from __future__ import annotations

import click
from flask import Flask, current_app


def register(app: Flask) -> None:
    """Add the platform's commands to ``flask``."""
    from core.scheduler import register_cli  # privacy: `flask scheduler`

    register_cli(app)

    @app.cli.command("migrate")
    def migrate_command() -> None:
        """Apply every Alembic migration to DATABASE_URL."""
        from core.migrate import upgrade

        upgrade(current_app.config["DATABASE_URL"])
        click.echo("database is up to date")

    @app.cli.command("rotate-secrets")
    def rotate_secrets_command() -> None:
        """Re-encrypt every stored secret with the first of ENCRYPTION_KEYS (all in one
        transaction); afterwards the other keys can be removed."""
        from core import secrets
        from core.db import Base

        done = secrets.rotate_all(
            current_app.extensions["db_engine"],
            Base.metadata,
            current_app.extensions["secrets_fernet"],
        )
        for name, count in done.items():
            click.echo(f"{name}: {count} re-encrypted")
        click.echo("every secret is now encrypted with the first key of ENCRYPTION_KEYS")
