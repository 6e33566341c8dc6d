"""Thin actors: take ids, call services."""

from __future__ import annotations

from campaigns import services
from campaigns.sending import delivery, transactional
from core.queue import actor


@actor(queue_name="send", max_retries=10, min_backoff=5_000, max_backoff=300_000)
def send_batch(campaign_id: int, chain: int = 0) -> None:
    """Send the next batch of a campaign's due messages (one chain per SMTP connection)."""
    delivery.send_batch(campaign_id, chain)


@actor(queue_name="send", max_retries=3)
def start_scheduled(campaign_id: int) -> None:
    """Start a scheduled campaign when its time has come (the reconciler is the safety net)."""
    services.start_scheduled(campaign_id)


@actor(queue_name="send", max_retries=10, min_backoff=5_000, max_backoff=300_000)
def send_transactional(message_id: int) -> None:
    """Send one transactional message (its deferrals are retried from the database)."""
    transactional.deliver(message_id)
