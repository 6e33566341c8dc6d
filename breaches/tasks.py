"""Thin actors: take ids, call services."""

from __future__ import annotations

from breaches import services
from core.queue import actor


@actor(queue_name="default", max_retries=5)
def send_notice(incident_account_id: int) -> None:
    """Email one affected account's owners the incident notice."""
    services.deliver_notice(incident_account_id)


@actor(queue_name="default", max_retries=5)
def send_report(incident_account_id: int) -> None:
    """Email one affected account's owners the report of the actions taken."""
    services.deliver_report(incident_account_id)
