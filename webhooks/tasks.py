"""Thin actors: take ids, call services."""

from __future__ import annotations

from core.queue import actor


# No queue retries: a delivery schedules its own next attempt (webhooks/delivery.py), and a
# worker that dies mid-attempt leaves the row for the reconciler.
@actor(queue_name="webhooks", max_retries=0)
def deliver(delivery_id: int) -> None:
    """Make the attempt of one delivery that is due (nothing when it is not)."""
    from webhooks import delivery

    delivery.attempt(delivery_id)
