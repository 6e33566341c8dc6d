"""Tracking events, as the privacy layer allowed them to be recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class TrackingEvent(Base):
    """An open, click or unsubscribe.

    ``message_id`` is set only for identified events (the account tracks individually and the
    contact allows it). ``ip_prefix`` and ``ua_class`` are already reduced: raw values never
    reach this table.
    """

    __tablename__ = "tracking_events"
    __table_args__ = (Index("ix_tracking_events_campaign_kind", "campaign_id", "kind"),)

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
    kind: Mapped[str] = mapped_column(String(16))  # open | click | unsubscribe
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    is_machine: Mapped[bool] = mapped_column(Boolean, default=False)
    ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ua_class: Mapped[str] = mapped_column(String(32), default="unknown")
