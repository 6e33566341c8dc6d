"""Thin actors of the engine: take ids, call a service, commit.

The engine never imports the privacy layer: the jobs that feed it through the gate are in
``privacy/tasks.py``.
"""

from __future__ import annotations

from accounts.models import Account
from core import db
from core.queue import actor
from engine import services


@actor(queue_name="engine", max_retries=10, min_backoff=5_000, max_backoff=300_000)
def remove_account_contributions(account_id: int) -> None:
    """After an opt-out: remove what the account contributed and recompute its effect away.

    Kept for jobs queued before migration 0331: an opt-out now enqueues
    :func:`privacy.tasks.leave_engine`, which also rebuilds the suppressed addresses the gate
    keeps (this job leaves them to the gate's daily maintenance).

    Skipped when the account has joined again meanwhile: joining already removed the old
    contributions, and what it contributed since then is wanted.
    """
    account = db.session.get(Account, account_id)
    if account is not None and account.engine_participation:
        return
    services.remove_account_contributions(account_id)
    db.session.commit()


def run_maintenance() -> None:
    """``flask engine maintain``: drop contributions of accounts that left or are past
    retention, rebuild the learned tables from the ledger (the scheduler runs the same daily:
    :func:`privacy.engine_gate.run_maintenance`, which also rebuilds the suppressed addresses
    the gate keeps by the contacts' hash). Safe to run twice, late or concurrently."""
    services.maintain()
    db.session.commit()
