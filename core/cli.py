"""Flask CLI commands: migrations, draining the in-process queue (``flask create-demo`` is
added by campaigns.views)."""

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
