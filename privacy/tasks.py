"""Thin actors of the engine gate: the engine's inputs that run as jobs, taking ids.

They live here, not in ``engine/tasks.py``: the gate enqueues them and they call the gate, so
the engine package never imports the privacy layer (the import contracts in pyproject.toml).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core import db
from core.queue import actor
from privacy import engine_gate


@actor(queue_name="engine", max_retries=5)
def record_deliveries(account_id: int, message_ids: list[int], at_iso: str) -> None:
    """A send claim's deliveries, through the privacy gate (the only way in)."""
    engine_gate.record_deliveries(account_id, message_ids, datetime.fromisoformat(at_iso))
    db.session.commit()


@actor(queue_name="engine", max_retries=5)
def record_engagements(signals: list[list[Any]]) -> None:
    """Human opens and clicks from one tracking ingest batch, through the privacy gate."""
    engine_gate.record_engagements(signals)
    db.session.commit()
