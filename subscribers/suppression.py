"""Suppression: addresses never to be mailed again, kept only as a keyed hash.

The hash is an HMAC-SHA256 of the lower-cased normalised address under ``ADDRESS_HASH_KEY``.
That key must never change (the hashes would stop matching); it is separate from the rotating
``SECRET_KEYS`` for that reason. Lower-casing the whole address errs on the side of suppressing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import cast

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    Table,
    bindparam,
    func,
    or_,
    select,
    update,
)

from core import db
from core.sqlhash import hmac_sha256_hex, utf8
from subscribers.hashing import address_hash
from subscribers.models import BlockedDomain, Contact, Suppression

REASONS = (
    "unsubscribed",
    "objected",
    "hard_bounce",
    "complaint",
    "erased",
    "blocked",
    "manual",
)
#: The one reason that is about marketing only (an unsubscribe): any other reason recorded
#: later for the same address replaces it (so a later bounce, objection or erasure is never
#: hidden behind an unsubscribe; ``privacy.policy.transactional_refusal`` tells them apart).
MARKETING_ONLY = "unsubscribed"
#: The reason given for an address whose domain a platform operator blocked.
BLOCKED_DOMAIN = "blocked_domain"


def suppress(account_id: int | None, email: str, reason: str) -> bool:
    """Suppress ``email`` for one account (or platform-wide with None). Idempotent; no commit.
    True when this call added the suppression (it was not there for any reason)."""
    return suppress_hash(account_id, address_hash(email), reason)


def suppress_hash(account_id: int | None, hashed: str, reason: str) -> bool:
    """Suppress an already-hashed address. Idempotent; the caller commits. True when added.

    One row per (account, hash): a row held only for an unsubscribe (:data:`MARKETING_ONLY`)
    takes the stronger reason when another one comes (it still counts as already there)."""
    if reason not in REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    query = select(Suppression).where(Suppression.address_hash == hashed)
    query = query.where(
        Suppression.account_id.is_(None)
        if account_id is None
        else Suppression.account_id == account_id
    )
    existing = db.session.scalar(query)
    if existing is None:
        db.session.add(Suppression(account_id=account_id, address_hash=hashed, reason=reason))
        db.session.flush()
        return True
    if existing.reason == MARKETING_ONLY and reason != MARKETING_ONLY:
        existing.reason = reason
        db.session.flush()
    return False


def unsuppress(account_id: int | None, email: str, reasons: Iterable[str]) -> int:
    """Lift the suppression of ``email`` held for one of ``reasons``; the caller commits.

    Used when the person themselves subscribes again (a confirmed opt-in lifts "unsubscribed")
    and by operators removing a block. Returns how many rows were removed.
    """
    query = select(Suppression).where(
        Suppression.address_hash == address_hash(email), Suppression.reason.in_(list(reasons))
    )
    query = query.where(
        Suppression.account_id.is_(None)
        if account_id is None
        else Suppression.account_id == account_id
    )
    removed = 0
    for row in db.session.scalars(query):
        db.session.delete(row)
        removed += 1
    db.session.flush()
    return removed


def _domain_candidates(email: str) -> list[str]:
    """The address's domain and each parent domain: a block of example.com covers a.example.com."""
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i:] and labels[i]]


def blocked_domains_of(emails: Iterable[str]) -> dict[str, str]:
    """Of ``emails``, those whose domain (or a parent domain) is blocked platform-wide,
    mapped to the blocked domain."""
    candidates: dict[str, list[str]] = {}
    for email in emails:
        candidates[email] = _domain_candidates(email)
    wanted = sorted({d for ds in candidates.values() for d in ds})
    blocked: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        blocked.update(
            db.session.scalars(select(BlockedDomain.domain).where(BlockedDomain.domain.in_(chunk)))
        )
    if not blocked:
        return {}
    found: dict[str, str] = {}
    for email, domains in candidates.items():
        hit = next((d for d in domains if d in blocked), None)
        if hit is not None:
            found[email] = hit
    return found


def suppression_reason(account_id: int, email: str) -> str | None:
    """Why ``email`` may not be mailed by this account (its own list, platform-wide, or a
    blocked domain), or None."""
    found = suppressed_hashes(account_id, [address_hash(email)])
    reason = next(iter(found.values()), None)
    if reason is None and blocked_domains_of([email]):
        return BLOCKED_DOMAIN
    return reason


def suppression_reasons(account_id: int, email: str) -> set[str]:
    """Every reason ``email`` is suppressed for the account or platform-wide (a blocked domain
    as :data:`BLOCKED_DOMAIN`); empty when it is not."""
    reasons = set(
        db.session.scalars(
            select(Suppression.reason).where(
                Suppression.address_hash == address_hash(email),
                or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)),
            )
        )
    )
    if blocked_domains_of([email]):
        reasons.add(BLOCKED_DOMAIN)
    return reasons


def suppression_scope(account_id: int, email: str) -> tuple[str | None, str | None]:
    """Whether the account may mail ``email``, told without revealing anything beyond it:
    ("account", reason) for the account's own suppression, ("platform", None) when only the
    platform (a platform-wide suppression or a blocked domain) stops it, (None, None) when
    nothing does."""
    own = db.session.scalar(
        select(Suppression.reason).where(
            Suppression.address_hash == address_hash(email), Suppression.account_id == account_id
        )
    )
    if own is not None:
        return "account", own
    if suppression_reason(account_id, email) is not None:
        return "platform", None
    return None, None


def suppressed_hashes(
    account_id: int, hashes: Iterable[str], reason: str | None = None
) -> dict[str, str]:
    """Of ``hashes``, those suppressed for the account or platform-wide, with their reason
    (only those suppressed for ``reason`` when given, whatever other reasons they carry)."""
    wanted = list(set(hashes))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(Suppression.address_hash, Suppression.reason).where(
            Suppression.address_hash.in_(chunk),
            or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)),
        )
        if reason is not None:
            query = query.where(Suppression.reason == reason)
        rows = db.session.execute(query)
        for hashed, why in rows:
            found.setdefault(hashed, why)
    return found


def suppressed_emails(account_id: int, emails: Iterable[str]) -> dict[str, str]:
    """Of ``emails``, those that may not be mailed by the account, with the reason: suppressed
    for the account or platform-wide (by keyed hash), or in a domain operators blocked."""
    by_hash = {address_hash(e): e for e in emails}
    found = {by_hash[h]: reason for h, reason in suppressed_hashes(account_id, by_hash).items()}
    for email in blocked_domains_of(by_hash.values()):
        found.setdefault(email, BLOCKED_DOMAIN)
    return found


def suppressed_hash_condition(
    account_id: int, email: SQLColumnExpression[str]
) -> ColumnElement[bool]:
    """The keyed-hash part of :func:`suppressed_emails` as a SQL condition on an address
    column: suppressed for the account or platform-wide, the hash computed by the database
    (:mod:`core.sqlhash`), so a count needs no hashing in Python. Blocked domains are not in
    it: check the domains with :func:`blocked_domains_of`.

    PostgreSQL only, and exact for ASCII addresses (SQL ``lower`` and Python's ``str.lower``
    agree there); callers check other addresses with :func:`suppressed_emails`. A test holds
    the two forms equal.
    """
    key = str(current_app.config["ADDRESS_HASH_KEY"]).encode()
    return suppressed_hash_in(account_id, hmac_sha256_hex(key, utf8(func.lower(func.btrim(email)))))


def suppressed_hash_in(account_id: int, hashed: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """A SQL condition: the address hash ``hashed`` (e.g. ``contacts.address_hash``) is
    suppressed for the account or platform-wide. Blocked domains are not in it."""
    return hashed.in_(
        select(Suppression.address_hash).where(
            or_(Suppression.account_id == account_id, Suppression.account_id.is_(None))
        )
    )


#: Rows hashed per statement, and the time one run of the backfill may take.
_FILL_CHUNK = 5000
_FILL_SECONDS = 20.0


def fill_contact_address_hashes(now: datetime | None = None) -> int:
    """The scheduler's backfill of ``contacts.address_hash`` for rows from before migration
    0329 (new rows get it on insert): hashes them in chunks, committing each, for at most
    :data:`_FILL_SECONDS` per run, with the app's own key. Returns the rows filled; 0 (and one
    index probe) once none is left."""
    contacts = cast(Table, Contact.__table__)
    # Core, not the ORM's bulk update: a backfill is not a change of the contact, so
    # ``updated_at`` (which API clients sync by) keeps its value.
    fill = (
        update(contacts)
        .where(contacts.c.id == bindparam("contact_id"))
        .values(address_hash=bindparam("hashed"), updated_at=contacts.c.updated_at)
    )
    started = time.monotonic()
    filled = 0
    last_id = 0
    while time.monotonic() - started < _FILL_SECONDS:
        rows = db.session.execute(
            select(Contact.id, Contact.email)
            .where(Contact.address_hash.is_(None), Contact.id > last_id)
            .order_by(Contact.id)
            .limit(_FILL_CHUNK)
        ).all()
        if not rows:
            break
        db.session.execute(
            fill, [{"contact_id": cid, "hashed": address_hash(email)} for cid, email in rows]
        )
        db.session.commit()
        filled += len(rows)
        last_id = rows[-1][0]
    return filled
