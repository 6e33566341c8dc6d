"""Thin actors: they take ids and call a service."""

from __future__ import annotations

from core.queue import actor


@actor(queue_name="default", max_retries=5)
def send_signup_confirmation(confirmation_id: int) -> None:
    """Email a pending sign-up's confirmation link."""
    from subscribers import services

    services.send_signup_confirmation(confirmation_id)


@actor(queue_name="imports", max_retries=3, time_limit=6 * 3600 * 1000)
def run_import(import_id: int) -> None:
    """Run a queued CSV import."""
    from subscribers import services

    services.run_import(import_id)
