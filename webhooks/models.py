"""Outgoing webhooks: an account's endpoints, their signing secrets, the events emitted and one
delivery per (event, endpoint) (the outbox, written in the emitting transaction)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, status_type, utcnow
from core.secrets import EncryptedText


class EventType(StrEnum):
    """What an endpoint can subscribe to. Values are the payload's ``type`` (Standard Webhooks:
    full-stop delimited) and are stored, so a value is never renamed."""

    MESSAGE_SENT = "message.sent"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_COMPLAINED = "message.complained"
    MESSAGE_OPENED = "message.opened"
    MESSAGE_CLICKED = "message.clicked"
    CONTACT_SUBSCRIBED = "contact.subscribed"
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed"
    CONTACT_ERASED = "contact.erased"
    CAMPAIGN_STARTED = "campaign.started"
    CAMPAIGN_FINISHED = "campaign.finished"
    IMPORT_FINISHED = "import.finished"
    DATA_REQUEST_FULFILLED = "data_request.fulfilled"
    #: Sent by "Send test event" to one endpoint only; nobody subscribes to it.
    TEST = "webhook.test"

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value)


_LABELS = {
    EventType.MESSAGE_SENT: "A message was accepted by the receiving server",
    EventType.MESSAGE_FAILED: "A message could not be delivered",
    EventType.MESSAGE_BOUNCED: "A message bounced",
    EventType.MESSAGE_COMPLAINED: "A recipient reported a message as spam",
    EventType.MESSAGE_OPENED: "A recipient opened a message (only with individual tracking)",
    EventType.MESSAGE_CLICKED: "A recipient clicked a link (only with individual tracking)",
    EventType.CONTACT_SUBSCRIBED: "A contact subscribed to a list",
    EventType.CONTACT_UNSUBSCRIBED: "A contact unsubscribed",
    EventType.CONTACT_ERASED: "A contact was erased (carries no address)",
    EventType.CAMPAIGN_STARTED: "A campaign started sending",
    EventType.CAMPAIGN_FINISHED: "A campaign finished sending",
    EventType.IMPORT_FINISHED: "A contact import finished",
    EventType.DATA_REQUEST_FULFILLED: "A data-subject request was fulfilled",
}

#: The types an endpoint may subscribe to (all but the test event).
SUBSCRIBABLE: tuple[EventType, ...] = tuple(t for t in EventType if t is not EventType.TEST)


class DeliveryStatus(StrEnum):
    """Where one delivery of an event to one endpoint stands."""

    PENDING = "pending"  # waiting for its (next) attempt at next_attempt_at
    SENDING = "sending"  # an attempt is running (claimed by a worker)
    SUCCEEDED = "succeeded"  # answered 2xx
    FAILED = "failed"  # every attempt failed, or the endpoint went away


class WebhookEndpoint(Base):
    """A URL of an account's that receives the events it subscribes to, signed."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # EventType values, sorted.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it was disabled (by a member, or after failing deliveries); empty when enabled.
    disabled_reason: Mapped[str] = mapped_column(String(300), default="")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # The first failed attempt since the last success (None: the last attempt succeeded).
    failing_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WebhookSecret(Base):
    """A signing secret of an endpoint (``whsec_<base64>``), encrypted at rest. A rotation adds
    a new one and gives the old ones an ``expires_at``; until then deliveries carry a
    signature for each, so receivers can switch without losing a webhook."""

    __tablename__ = "webhook_secrets"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    secret: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WebhookEvent(Base):
    """Something that happened in an account, as sent: ``public_id`` is the ``webhook-id``
    header (the receiver's idempotency key, the same on every retry), ``payload`` the body.
    ``contact_id`` names the contact a payload is about (plain number: erasure finds and
    scrubs its payloads by it)."""

    __tablename__ = "webhook_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    contact_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class WebhookDelivery(Base):
    """One event to one endpoint: its attempts, the next one, and the last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        status_type(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What went wrong last (our words, or the start of the receiver's answer).
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
