"""Flask CLI commands: migrations, the demo account, draining the in-process queue."""

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

    @app.cli.command("create-demo")
    @click.option("--email", default="demo@example.com", show_default=True)
    @click.option("--password", default="demo-password", show_default=True)
    def create_demo_command(email: str, password: str) -> None:
        """Create a demo account with a list and a draft campaign (idempotent)."""
        from core.demo import create_demo

        created = create_demo(email, password)
        click.echo(("created" if created else "exists") + f": log in as {email} / {password}")
