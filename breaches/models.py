"""Security incidents, the accounts they affect, and the record of who did what."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v.value}'" for v in values) + ")"


class IncidentStatus(StrEnum):
    """Where an incident stands: recorded, owners notified, report of the actions sent."""

    RECORDED = "recorded"
    NOTIFIED = "notified"
    REPORTED = "reported"


class IncidentStep(StrEnum):
    """One audited step of an incident (``breach_incident_log``)."""

    RECORDED = "recorded"
    ACCOUNTS_SELECTED = "accounts-selected"
    NOTICES_SENT = "notices-sent"
    NOTICE_DELIVERED = "notice-delivered"
    REPORT_SENT = "report-sent"
    REPORT_DELIVERED = "report-delivered"


class Incident(Base):
    """A security incident as recorded by a platform operator (the notice's content)."""

    __tablename__ = "breach_incidents"
    __table_args__ = (
        CheckConstraint(_one_of("status", IncidentStatus), name="status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    what_happened: Mapped[str] = mapped_column(Text)
    discovered_at: Mapped[datetime] = mapped_column(DateTime)
    data_categories: Mapped[str] = mapped_column(Text)
    consequences: Mapped[str] = mapped_column(Text)
    measures: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.RECORDED.value)
    # The report of the actions taken, sent after the notices.
    report: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class IncidentAccount(Base):
    """An account an incident affects, the contacts it held then, and what its owners got."""

    __tablename__ = "breach_incident_accounts"
    __table_args__ = (UniqueConstraint("incident_id", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("breach_incidents.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # Contacts the account held when it was selected (the contacts concerned).
    contacts_concerned: Mapped[int] = mapped_column(Integer, default=0)
    selected_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    notice_sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    report_sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class IncidentLogEntry(Base):
    """Who did what to an incident, when. Operators and accounts by id (plain numbers: the
    entry outlives them); no address of anyone."""

    __tablename__ = "breach_incident_log"
    __table_args__ = (CheckConstraint(_one_of("step", IncidentStep), name="step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("breach_incidents.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(String(32))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
