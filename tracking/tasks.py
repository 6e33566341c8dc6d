"""Thin actors: ingest the hit buffer (the event retention is a scheduler job)."""

from __future__ import annotations

from flask import current_app

from core.queue import actor


@actor(queue_name="tracking", max_retries=50, min_backoff=500, max_backoff=15_000)
def ingest_buffered_hits() -> None:
    """Ingest every buffered hit in batches (enqueued by the buffer's pushes; safe to repeat)."""
    from tracking import buffer

    buffer.drain(current_app._get_current_object())  # type: ignore[attr-defined]
