"""Contacts, mailing lists and subscriptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, status_type, utcnow
from subscribers.hashing import address_hash


def _address_hash_of_row(context: Any) -> str | None:
    """Insert default of ``contacts.address_hash``: the keyed hash of the row's address, so
    every insert made through SQLAlchemy (ORM or Core) carries it."""
    email = context.get_current_parameters().get("email")
    return None if email is None else address_hash(email)


class SubscriptionStatus(StrEnum):
    """A contact on one list. An unsubscribed subscription always has its ``unsubscribed_at``
    (a database constraint)."""

    UNCONFIRMED = "unconfirmed"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class ImportStatus(StrEnum):
    """A CSV import: uploaded -> queued -> running -> done | failed."""

    UPLOADED = "uploaded"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RestrictedBy(StrEnum):
    """Who restricted processing of a contact (GDPR art. 18)."""

    PERSON = "person"  # the data subject, through the public request form
    ACCOUNT = "account"  # a member of the account, for one contact


#: What ``ix_contacts_attribute_values`` holds: the attributes' values (not their names) as a
#: jsonb array, its text lowered. A lowered jsonb text is still JSON (jsonb writes its escapes in
#: lower case already), and the names stay apart, so "City" and "city" cannot collide.
#: subscribers.queries.attribute_value_prefilter builds the same expression.
ATTRIBUTE_VALUES_INDEXED = "(lower(jsonb_path_query_array(attributes::jsonb, '$.*')::text)::jsonb)"


class Contact(Base):
    """A person whose address an account holds; one per normalised address per account."""

    __tablename__ = "contacts"
    # The unique (account, email) index also serves every lookup by account: no second index
    # on account_id, which would only slow imports down.
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = (
        UniqueConstraint("account_id", "email"),
        # Contact search (a part of the address or name) on PostgreSQL: pg_trgm's GIN indexes,
        # made by migration 0324 where the server has the extension; SQLite scans.
        *(
            Index(name, text(f"lower({column}) gin_trgm_ops"), postgresql_using="gin").ddl_if(
                dialect="postgresql"
            )
            for name, column in (
                ("ix_contacts_email_trgm", "email"),
                ("ix_contacts_name_trgm", "name"),
            )
        ),
        # Contact search by attribute value on PostgreSQL (migration 0328): the values of the
        # attributes, lowered, as a jsonb array; contact_search narrows by it, SQLite scans.
        Index(
            "ix_contacts_attribute_values",
            text(ATTRIBUTE_VALUES_INDEXED + " jsonb_path_ops"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
        CheckConstraint(
            "restricted_by IS NULL OR restricted_by IN ('person', 'account')", name="restricted_by"
        ),
        # The few non-ASCII addresses, which an audience count checks in Python (0329).
        Index(
            "ix_contacts_non_ascii",
            "id",
            postgresql_where=text("octet_length(email) <> length(email)"),
        ).ddl_if(dialect="postgresql"),
        # The rows whose address hash is still to be filled (migration 0329): empty once the
        # backfill is done, so the scheduler's check for them costs nothing.
        Index(
            "ix_contacts_address_hash_missing",
            "id",
            postgresql_where=text("address_hash IS NULL"),
            sqlite_where=text("address_hash IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    # The keyed hash the address is suppressed under (subscribers.hashing), so an audience is
    # counted against the suppression list by a join instead of by hashing every address.
    # Addresses never change, so it is set once, on insert. NULL only on rows from before
    # migration 0329 until the scheduler's backfill reaches them (counts hash those in place).
    address_hash: Mapped[str | None] = mapped_column(
        String(64), nullable=True, default=_address_hash_of_row
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(64), default="manual")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Data-subject state (GDPR art. 18 and 21, consent withdrawal). Any of them stops sending,
    # tracking and the optimisation engine.
    restricted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Who set the restriction (a RestrictedBy; migration 0311): the person's own stays until
    # the person lifts it; the account may lift only the restrictions it set.
    restricted_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    objected_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Added by privacy (migration 0106): the person withdrew consent (GDPR art. 7(3)).
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The person turned off tracking of their opens and clicks in the preference centre and
    # stays subscribed: their hits record nothing (privacy.policy.recipient_tracking_choice).
    tracking_refused_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )


class MailingList(Base):
    """A list of contacts an account sends campaigns to."""

    __tablename__ = "mailing_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The public sign-up form: off until the marketer turns it on; reached at /subscribe/<key>.
    signup_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    signup_key: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)


class Subscription(Base):
    """A contact's status on one list: unconfirmed, subscribed or unsubscribed."""

    __tablename__ = "subscriptions"
    # The unique (list, contact) index also serves lookups by list. The (list, status) one
    # counts a list's members by status from the index alone (the lists page, migration 0328).
    __table_args__ = (
        UniqueConstraint("list_id", "contact_id"),
        Index("ix_subscriptions_list_id_status", "list_id", "status"),
        CheckConstraint(
            "status <> 'unsubscribed' OR unsubscribed_at IS NOT NULL",
            name="unsubscribed_has_time",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[SubscriptionStatus] = mapped_column(
        status_type(SubscriptionStatus), default=SubscriptionStatus.SUBSCRIBED
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    contact: Mapped[Contact] = relationship(back_populates="subscriptions")


class Suppression(Base):
    """An address that must not be mailed, held only as a keyed hash (never in clear text).

    ``account_id`` NULL means platform-wide (operator blocks, erasure across the platform).
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "address_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True, index=True
    )
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    # unsubscribed | hard_bounce | complaint | erased | blocked | manual
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsentRecord(Base):
    """One change of consent: what, when, through which form, import or action.

    ``ip_prefix`` is set only when the account records IPs with consent, and is then already
    truncated by :func:`privacy.policy.reduce_ip`.
    """

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="SET NULL"), nullable=True
    )
    # signup_requested | subscribed | unsubscribed | unsubscribed_all | resubscribed | imported
    # | tracking_refused | tracking_allowed
    action: Mapped[str] = mapped_column(String(32))
    # form | import | preference-centre | unsubscribe | manual
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(200), default="")
    ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SubscriberSettings(Base):
    """An account's settings for its subscribers (a row only once changed from the defaults)."""

    __tablename__ = "subscriber_settings"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    # Off by default: consent records hold no IP at all unless the account asks for it.
    record_consent_ip: Mapped[bool] = mapped_column(Boolean, default=False)


class SignupConfirmation(Base):
    """A pending double opt-in; the emailed token names this row, which makes it single use."""

    __tablename__ = "signup_confirmations"
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class BlockedDomain(Base):
    """A domain (and its subdomains) no account may mail: set by platform operators."""

    __tablename__ = "blocked_domains"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Segment(Base):
    """A saved filter over contacts, stored as allow-listed rules (never as SQL)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    match: Mapped[str] = mapped_column(String(8), default="all")  # all | any
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ImportJob(Base):
    """A CSV import: the uploaded file, its column mapping, progress and outcome."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        Index("ix_import_jobs_account_created", "account_id", "created_at"),
        CheckConstraint(
            "encoding IN ('utf-8', 'utf-16-le', 'utf-16-be', 'cp1252')",
            name="ck_import_jobs_encoding",
        ),
        CheckConstraint("delimiter IN (',', ';', '\t')", name="ck_import_jobs_delimiter"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[ImportStatus] = mapped_column(
        status_type(ImportStatus), default=ImportStatus.UPLOADED
    )
    filename: Mapped[str] = mapped_column(String(255), default="")
    stored_path: Mapped[str] = mapped_column(String(500), default="")
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # How the file is read (subscribers.csvformat): detected at upload, the person may change it.
    encoding: Mapped[str] = mapped_column(String(16), default="utf-8", server_default="utf-8")
    delimiter: Mapped[str] = mapped_column(String(1), default=",", server_default=",")
    update_existing: Mapped[bool] = mapped_column(Boolean, default=False)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    processed_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    report_path: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
