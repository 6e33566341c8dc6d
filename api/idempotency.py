"""``Idempotency-Key`` on creating POSTs: the first answer is kept and replayed to a retry.

Per account and key, for ``API_IDEMPOTENCY_HOURS``: a retry with the same request (method,
path and body, by SHA-256) gets the stored answer and creates nothing; the same key with
another request is refused (422); a retry while the first is still being answered gets 409.
Only successful answers are kept: after a refusal the client may fix the request and retry
with the same key. Rows are swept by the scheduler (``sweep``) and erased with a contact
(the answer may quote the address; privacy/registry.py, ``api_idempotency``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from api.models import IdempotentRequest
from core import db
from core.db import utcnow
from core.problems import FieldError, Problem

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    status: int
    body: str
    headers: dict[str, str]


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def _period() -> timedelta:
    return timedelta(hours=int(current_app.config["API_IDEMPOTENCY_HOURS"]))


def begin(account_id: int, key: str, fingerprint: str) -> Stored | None:
    """Claim ``key`` for this request: None when it is new (answer it, then :func:`finish` or
    :func:`abandon`), the stored answer for a retry of the same request. Raises Problem 422
    for a key reused with another request, 409 while the first is in progress. Commits."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            422,
            f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters.",
            "validation-error",
            [FieldError("Idempotency-Key", "1 to 255 characters")],
        )
    found = db.session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.account_id == account_id, IdempotentRequest.key == key
        )
    )
    if found is not None and found.created_at < utcnow() - _period():
        db.session.delete(found)
        db.session.flush()
        found = None
    if found is None:
        db.session.add(
            IdempotentRequest(
                account_id=account_id,
                key=key,
                request_hash=fingerprint,
                created_at=utcnow(),
                response_headers={},
            )
        )
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise _in_progress() from None
        return None
    if found.request_hash != fingerprint:
        raise Problem(
            422,
            "This Idempotency-Key was used with another request; use a new key.",
            "idempotency-key-reused",
            [FieldError("Idempotency-Key", "used with another request")],
        )
    if found.status_code is None or found.response_body is None:
        raise _in_progress()
    return Stored(found.status_code, found.response_body, dict(found.response_headers))


def _in_progress() -> Problem:
    return Problem(
        409,
        "A request with this Idempotency-Key is still being answered; retry in a moment.",
        "idempotency-in-progress",
        headers={"Retry-After": "1"},
    )


def finish(account_id: int, key: str, status: int, body: str, headers: dict[str, Any]) -> None:
    """Keep the successful answer to the claimed ``key``. Commits."""
    found = db.session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.account_id == account_id, IdempotentRequest.key == key
        )
    )
    if found is not None:
        found.status_code = status
        found.response_body = body
        found.response_headers = {name: str(value) for name, value in headers.items()}
        db.session.commit()


def abandon(account_id: int, key: str) -> None:
    """Release a claimed key whose request failed, so it may be retried. Commits."""
    db.session.rollback()
    db.session.execute(
        delete(IdempotentRequest).where(
            IdempotentRequest.account_id == account_id,
            IdempotentRequest.key == key,
            IdempotentRequest.status_code.is_(None),
        )
    )
    db.session.commit()


def sweep(now: datetime) -> int:
    """Delete answers older than ``API_IDEMPOTENCY_HOURS``. Commits; safe to run twice."""
    result = db.session.execute(
        delete(IdempotentRequest).where(IdempotentRequest.created_at < now - _period())
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
