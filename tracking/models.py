"""Tracking events, as the privacy layer allowed them to be recorded, and daily aggregates."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow

#: Index predicates; queries that want these indexes repeat them word for word.
HUMAN_IDENTIFIED = "message_id IS NOT NULL AND is_machine = false"
MACHINE_EVIDENCE = "machine_reason IN ('honeypot', 'head')"


class TrackingEvent(Base):
    """An open, click, unsubscribe or honeypot fetch.

    ``message_id`` is set only for identified events (the account tracks individually and the
    contact allows it). No IP address or prefix reaches this table (migration 0312): the prefix
    serves machine classification at ingest and is dropped there; ``machine_reason`` names the
    network (``network:google``) when that decided. ``ua_class`` is already reduced.
    ``hit_uid`` is a random id given to the hit in the request, so a batch ingested twice (a
    worker killed after its commit) is stored once.

    On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration 0323, see
    :mod:`tracking.partitions`): its primary key there is ``(id, occurred_at)``, which the
    model does not say (SQLite keeps one table with ``id`` alone as its key).
    """

    __tablename__ = "tracking_events"
    __table_args__ = (
        Index("ix_tracking_events_campaign_kind", "campaign_id", "kind"),
        Index("ix_tracking_events_account_occurred", "account_id", "occurred_at"),
        # With the event time: on PostgreSQL the table is partitioned by ``occurred_at``, and a
        # unique index there must hold the partition key. A hit stored twice has the same time.
        Index("uq_tracking_events_hit_uid", "hit_uid", "occurred_at", unique=True),
        # The ingest's two questions per batch, answered without reading a message's whole
        # history: has this message (kind, link) a human event yet, and machine evidence?
        Index(
            "ix_tracking_events_human",
            "message_id",
            "kind",
            "link_id",
            postgresql_where=text(HUMAN_IDENTIFIED),
            sqlite_where=text(HUMAN_IDENTIFIED),
        ),
        Index(
            "ix_tracking_events_evidence",
            "message_id",
            "occurred_at",
            postgresql_where=text(MACHINE_EVIDENCE),
            sqlite_where=text(MACHINE_EVIDENCE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("links.id", ondelete="SET NULL"), nullable=True
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # open | click | unsubscribe | honeypot
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    is_machine: Mapped[bool] = mapped_column(Boolean, default=False)
    machine_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ua_class: Mapped[str] = mapped_column(String(32), default="unknown")
    hit_uid: Mapped[str | None] = mapped_column(String(32), nullable=True)


class DailyCampaignStat(Base):
    """Per campaign, day, kind and human/machine: how many hits, how many first ones.

    No personal data: counts only. ``uniques`` counts identified messages seen for the first
    time that day (so the sum over days is the campaign's unique figure).
    """

    __tablename__ = "tracking_daily_campaign_stats"
    __table_args__ = (UniqueConstraint("campaign_id", "day", "kind", "is_machine"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    is_machine: Mapped[bool] = mapped_column(Boolean)
    total: Mapped[int] = mapped_column(Integer, default=0)
    uniques: Mapped[int] = mapped_column(Integer, default=0)


class DailyLinkStat(Base):
    """Per link, day and human/machine: clicks and first clicks. Counts only."""

    __tablename__ = "tracking_daily_link_stats"
    __table_args__ = (UniqueConstraint("link_id", "day", "is_machine"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    is_machine: Mapped[bool] = mapped_column(Boolean)
    total: Mapped[int] = mapped_column(Integer, default=0)
    uniques: Mapped[int] = mapped_column(Integer, default=0)


class UnsubscribeStatus(StrEnum):
    """Whether an unsubscribe through a message stands or was undone within the undo window."""

    ACTIVE = "active"
    UNDONE = "undone"


class MessageUnsubscribe(Base):
    """The unsubscribe made through one message: at most one row per message, whatever the
    number of POSTs, clicks or one-click replays (the unique ``message_id`` is the guard).

    The campaign's unsubscribe figure counts the active rows (see :mod:`tracking.analytics`).
    ``list_ids`` and ``suppressed`` say what the unsubscribe changed, so an undo gives back
    exactly that. ``times`` counts how often the row was (re)made: an undo link names it, so
    a link for an earlier unsubscribe cannot undo a later one.
    """

    __tablename__ = "message_unsubscribes"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'undone')",
            name="status",
        ),
        Index("ix_message_unsubscribes_campaign_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default=UnsubscribeStatus.ACTIVE.value)
    list_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    times: Mapped[int] = mapped_column(Integer, default=1)
    unsubscribed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class QuarterStat(Base):
    """Roll-up: per campaign, UTC quarter hour, kind and human/machine, how many events.

    ``quarter`` is the number of quarter hours since 1970-01-01 00:00 UTC. Every zone's offset
    is a whole number of quarter hours, so these add up exactly into the local hours and days
    of any account's zone (the report's series). Counts only, no personal data; kept by the
    ingest in the events' transaction and outliving the events' retention.
    """

    __tablename__ = "tracking_quarter_stats"
    __table_args__ = (UniqueConstraint("campaign_id", "quarter", "kind", "is_machine"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    quarter: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    is_machine: Mapped[bool] = mapped_column(Boolean)
    total: Mapped[int] = mapped_column(Integer, default=0)


class DomainStat(Base):
    """Roll-up: per campaign, recipient domain and kind, the human identified events and the
    messages with one (``uniques``, decided at ingest: the message's first human event of the
    kind). Only the part after the ``@``, no local part: counts only, no person. Erasure takes
    a person's events out (they stop being identified, so the report built from the events
    would no longer count them either)."""

    __tablename__ = "tracking_domain_stats"
    __table_args__ = (UniqueConstraint("campaign_id", "domain", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer, default=0)
    uniques: Mapped[int] = mapped_column(Integer, default=0)


class ReasonStat(Base):
    """Roll-up: per campaign and machine reason (``honeypot``, ``head``, ``network:google``,
    ``burst``...), how many machine events. Counts only."""

    __tablename__ = "tracking_reason_stats"
    __table_args__ = (UniqueConstraint("campaign_id", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    total: Mapped[int] = mapped_column(Integer, default=0)
