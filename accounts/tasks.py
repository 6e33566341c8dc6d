"""Thin actors: take ids, call services."""

from __future__ import annotations

from accounts import services
from core.queue import actor


@actor(queue_name="default", max_retries=3)
def send_lockout_notice(user_id: int) -> None:
    """Email the user that their login is locked, with a password-reset link."""
    services.send_lockout_notice(user_id)
