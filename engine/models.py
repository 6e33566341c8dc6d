"""The engine's tables: a contribution ledger, and the learned tables built from it.

Two layers, on purpose:

* ``engine_contributions`` is the ledger: which account contributed which outcome for which
  address hash, per day and hour. It is never read to serve a send; it exists so that an
  account's contributions can be removed exactly (opt-out, account deletion) and an address's
  (erasure, objection) too.
* ``engine_addresses``, ``engine_address_hours`` and ``engine_domain_days`` are what the engine
  serves from. They hold no account, no contact id, no name: only an address hash (HMAC under
  ENGINE_HASH_KEY, not the suppression key), its domain, counts, dates and hours. They are a
  pure function of the ledger: updated incrementally as outcomes arrive, recomputed for the
  affected keys when contributions are removed, and rebuilt whole by the maintenance job.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

#: Kinds of contribution: delivery outcomes and human engagement.
OUTCOMES = ("delivered", "deferred", "bounced", "complained")
ENGAGEMENTS = ("open", "click")
KINDS = OUTCOMES + ENGAGEMENTS


class EngineContribution(Base):
    """Ledger: ``count`` events of ``kind`` for one address hash from one account, per hour.

    Not used for serving. Deleted with the account (cascade), on opt-out, erasure and objection.
    """

    __tablename__ = "engine_contributions"
    __table_args__ = (
        UniqueConstraint("account_id", "address_hash", "day", "hour", "kind"),
        Index("ix_engine_contributions_domain_day", "domain", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    domain: Mapped[str] = mapped_column(String(255))
    day: Mapped[date] = mapped_column(Date)
    hour: Mapped[int] = mapped_column(SmallInteger)  # 0-23, UTC
    kind: Mapped[str] = mapped_column(String(16))  # one of KINDS
    count: Mapped[int] = mapped_column(Integer, default=0)


#: engine.queries.is_suppressed as SQL text, for the partial index (a test holds them equal).
SUPPRESSED_SQL = (
    "complained > 0 OR (bounced > 0 AND (last_delivered_on IS NULL"
    " OR last_bounced_on >= last_delivered_on))"
)


class EngineAddress(Base):
    """What the engine knows of one address hash, summed over every participating account."""

    __tablename__ = "engine_addresses"
    # The suppressed few (engine.queries.is_suppressed, the same condition): an audience count
    # reads them by index, which also lets its aggregate run in parallel (migration 0329).
    __table_args__ = (
        Index(
            "ix_engine_addresses_suppressed",
            "domain",
            "address_hash",
            postgresql_where=text(SUPPRESSED_SQL),
        ).ddl_if(dialect="postgresql"),
    )

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), index=True)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    complained: Mapped[int] = mapped_column(Integer, default=0)
    opens: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    last_delivered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    last_bounced_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class EngineAddressHour(Base):
    """Human opens and clicks of one address hash in one hour of the day (UTC)."""

    __tablename__ = "engine_address_hours"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    engagements: Mapped[int] = mapped_column(Integer, default=0)


class EngineDomainDay(Base):
    """A domain's outcomes and human engagement on one day (UTC): pacing and the operator page."""

    __tablename__ = "engine_domain_days"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    complained: Mapped[int] = mapped_column(Integer, default=0)
    opens: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


#: Every table of the engine, for scans (tests) and maintenance.
ENGINE_TABLES = (EngineContribution, EngineAddress, EngineAddressHour, EngineDomainDay)
