"""Suppression: addresses never to be mailed again, kept only as a keyed hash.

The hash is an HMAC-SHA256 of the lower-cased normalised address under ``ADDRESS_HASH_KEY``.
That key must never change (the hashes would stop matching); it is separate from the rotating
``SECRET_KEYS`` for that reason. Lower-casing the whole address errs on the side of suppressing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import or_, select

from core import db
from subscribers.models import Suppression

REASONS = ("unsubscribed", "hard_bounce", "complaint", "erased", "blocked", "manual")


def address_hash(email: str) -> str:
    """The keyed hash an address is suppressed under."""
    key = str(current_app.config["ADDRESS_HASH_KEY"]).encode()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def suppress(account_id: int | None, email: str, reason: str) -> None:
    """Suppress ``email`` for one account (or platform-wide with None). Idempotent; no commit."""
    suppress_hash(account_id, address_hash(email), reason)


def suppress_hash(account_id: int | None, hashed: str, reason: str) -> None:
    """Suppress an already-hashed address. Idempotent; the caller commits."""
    if reason not in REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    query = select(Suppression.id).where(Suppression.address_hash == hashed)
    query = query.where(
        Suppression.account_id.is_(None)
        if account_id is None
        else Suppression.account_id == account_id
    )
    if db.session.scalar(query) is None:
        db.session.add(Suppression(account_id=account_id, address_hash=hashed, reason=reason))
        db.session.flush()


def suppression_reason(account_id: int, email: str) -> str | None:
    """Why ``email`` may not be mailed by this account (its own list or platform-wide), or None."""
    found = suppressed_hashes(account_id, [address_hash(email)])
    return next(iter(found.values()), None)


def suppressed_hashes(account_id: int, hashes: Iterable[str]) -> dict[str, str]:
    """Of ``hashes``, those suppressed for the account or platform-wide, with their reason."""
    wanted = list(set(hashes))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = db.session.execute(
            select(Suppression.address_hash, Suppression.reason).where(
                Suppression.address_hash.in_(chunk),
                or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)),
            )
        )
        for hashed, reason in rows:
            found.setdefault(hashed, reason)
    return found


def suppressed_emails(account_id: int, emails: Iterable[str]) -> dict[str, str]:
    """Of ``emails``, those that may not be mailed by the account, with the reason."""
    by_hash = {address_hash(e): e for e in emails}
    return {by_hash[h]: reason for h, reason in suppressed_hashes(account_id, by_hash).items()}
