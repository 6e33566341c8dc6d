"""The API's personal data, for privacy/registry.py: stored answers of idempotent requests
(``api_idempotency``) may quote a contact's address and name for up to
``API_IDEMPOTENCY_HOURS``. Found by the address in the stored answer (in every account when
the person asks, in its own when an account erases its contact)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from api import idempotency
from api.models import IdempotentRequest
from core import db
from core.db import iso
from privacy.registry import Person, Records


def _quoting(person: Person) -> Any:
    condition = func.lower(IdempotentRequest.response_body).contains(
        person.address.lower(), autoescape=True
    )
    if person.platform_wide:
        return condition
    return condition & (IdempotentRequest.account_id == person.account_id)


def report_idempotent_answers(person: Person) -> Records:
    """The stored API answers that quote the person's address (when, and until when)."""
    rows = db.session.scalars(
        select(IdempotentRequest).where(_quoting(person)).order_by(IdempotentRequest.id)
    )
    records = [
        {
            "what": "the answer to an API request of the organisation that added or changed "
            "your record, kept so that a repeated request does not repeat the change",
            "stored": iso(row.created_at),
        }
        for row in rows
    ]
    return {None: records} if records else {}


def erase_idempotent_answers(person: Person) -> None:
    """Stored answers quoting the address are deleted (a retry then acts anew)."""
    db.session.execute(
        delete(IdempotentRequest)
        .where(_quoting(person))
        .execution_options(synchronize_session=False)
    )


def sweep_idempotent_answers(now: datetime) -> int:
    """Answers older than ``API_IDEMPOTENCY_HOURS`` are deleted. Commits."""
    return idempotency.sweep(now)
