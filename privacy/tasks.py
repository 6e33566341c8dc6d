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


@actor(queue_name="engine", max_retries=10, min_backoff=5_000, max_backoff=300_000)
def leave_engine(account_id: int) -> None:
    """After an opt-out: the account's contributions removed, their effect recomputed away."""
    engine_gate.leave(account_id)
    db.session.commit()


@actor(queue_name="engine", max_retries=5)
def rebuild_engine_verdicts() -> None:
    """The engine's suppressed addresses rebuilt from the contacts (after an account's
    contributions went: an account deleted, or joining again)."""
    engine_gate.rebuild_verdicts()
    db.session.commit()
