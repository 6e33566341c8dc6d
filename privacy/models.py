"""Data-subject requests, their audit log, single-use downloads and spent tokens.

No table here holds an email address in clear text, except ``privacy_requests.pending_address``
while a request waits for its confirmation and fulfilment (at most ``DATA_REQUEST_MAX_AGE``);
fulfilment and expiry set it to NULL. Everything else names a person only by the keyed hash of
:func:`subscribers.suppression.address_hash`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, status_type, utcnow
from subscribers.models import Contact

# Requests find every account's contact by address, case-insensitively, across all accounts:
# an expression index on contacts (declared here so the subscribers package stays untouched).
Index("ix_contacts_email_lower", func.lower(Contact.email))

#: What a data subject (or a marketer for one contact) can ask for.
REQUEST_KINDS = {
    "access": "A copy of my data (access report)",
    "export": "A portable export (JSON and CSV)",
    "rectify": "Correct my data",
    "erase": "Erase my data",
    "restrict": "Restrict processing (keep, but do not use)",
    "unrestrict": "Lift a restriction I asked for",
    "object": "Object to marketing and profiling",
    "withdraw": "Withdraw my consent",
}


class DataRequestStatus(StrEnum):
    """A data-subject request: received -> confirmed -> fulfilled, or expired."""

    RECEIVED = "received"
    CONFIRMED = "confirmed"
    FULFILLED = "fulfilled"
    EXPIRED = "expired"


class DataRequest(Base):
    """One request about an address: received -> confirmed -> fulfilled, or expired."""

    __tablename__ = "privacy_requests"
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = (
        Index("ix_privacy_requests_status_expires", "status", "expires_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[DataRequestStatus] = mapped_column(
        status_type(DataRequestStatus), default=DataRequestStatus.RECEIVED
    )
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The normalised address, only until fulfilment or expiry (needed to find and mail it).
    pending_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # Rectification: the corrections proposed by the person ({"name": ..., "note": ...}).
    proposed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The client's reduced IP prefix (privacy.policy.reduce_ip), for the per-client rate limit
    # only: the retention sweep clears it once older than DATA_REQUEST_LIMIT_WINDOW.
    client_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Who asked: "data-subject" (public form) or "member:<user id>" (a marketer, one contact).
    actor: Mapped[str] = mapped_column(String(64), default="data-subject")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RequestAccount(Base):
    """An account a request concerns (it held the address): notified, and for rectification
    whether it applied the proposed corrections."""

    __tablename__ = "privacy_request_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("privacy_requests.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    notified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    applied_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class AuditEntry(Base):
    """One step of one request (received, confirmed, fulfilled, expired, applied, throttled).

    Kept after the request row is removed, so ``request_id`` and ``account_id`` are plain
    numbers, not foreign keys. The address appears only as its keyed hash.
    """

    __tablename__ = "privacy_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    address_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Download(Base):
    """A report or export prepared for one download: expires, and is emptied once fetched."""

    __tablename__ = "privacy_downloads"
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("privacy_requests.id", ondelete="CASCADE"), nullable=True, index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SpentToken(Base):
    """A single-use token already used (account deletion links), kept until it expires."""

    __tablename__ = "privacy_spent_tokens"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64))
    spent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ConfirmationMail(Base):
    """When a confirmation email last went to an address (by keyed hash): at most one per
    ``DATA_REQUEST_EMAIL_WINDOW``, claimed row by row so concurrent requests cannot both send."""

    __tablename__ = "privacy_confirmation_mail"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class EngineSuppressedAddress(Base):
    """An address the Delivery Optimization Engine suppresses now, by the keyed hash contacts
    keep (``contacts.address_hash``), so that an audience count joins it instead of computing
    the engine's own hash of every address (migration 0331).

    Maintained by :mod:`privacy.engine_gate` only: exactly, at the moment an outcome or a
    removal changes what the engine holds about an address it is given; rebuilt from the
    contacts after changes that name no address (an account leaving, retention). It holds no
    engine hash, so it does not join the engine's pseudonymous rows to addresses, and only
    addresses some account holds as a contact are kept by a rebuild.
    """

    __tablename__ = "engine_suppressed_addresses"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
