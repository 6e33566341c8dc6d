"""The operator page of the engine, and its CLI commands (``flask engine ...``)."""

from __future__ import annotations

from typing import Any

import click
from flask import Blueprint, render_template

from core import nav
from core.auth import operator_required
from engine import analytics, charts, tasks

bp = Blueprint("engine", __name__, template_folder="templates", cli_group="engine")
nav.add("Engine", "engine.overview", 200, role="operator")


@bp.get("/operator/engine")
@operator_required
def overview() -> Any:
    """What the engine holds, per day and per domain; never per address."""
    found = analytics.overview(days=30)
    return render_template(
        "engine/overview.html",
        overview=found,
        outcomes_chart=charts.outcomes_by_day(found.days),
        hours_chart=charts.engagement_by_hour(found.hours),
        series=charts.SERIES,
    )


@bp.cli.command("maintain")
def maintain_command() -> None:
    """Drop contributions of accounts that left or are past retention; rebuild the engine."""
    tasks.run_maintenance()
    click.echo("engine rebuilt from its contribution ledger")
