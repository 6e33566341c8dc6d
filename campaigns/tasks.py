"""Thin actors: take ids, call services."""

from __future__ import annotations

from campaigns import services
from core.queue import actor


@actor(queue_name="send", max_retries=10, min_backoff=5_000, max_backoff=300_000)
def send_batch(campaign_id: int) -> None:
    """Send the next batch of a campaign's pending messages."""
    services.send_batch(campaign_id)
