"""Campaigns, their audience, tracked links, one Message row per recipient, and what sending
needs per account: verified senders, SMTP servers, DKIM keys, reusable templates, bounces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, status_type, utcnow
from core.mail import mask_smtp_url
from core.secrets import EncryptedText


class CampaignStatus(StrEnum):
    """Where a campaign is: draft -> scheduled -> starting -> sending <-> paused -> sent, or
    cancelled. ``starting`` is the moment the scheduler has taken a scheduled campaign and is
    writing its messages (shown as sending)."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    STARTING = "starting"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class MessageStatus(StrEnum):
    """One recipient's message: pending -> claimed (a worker holds it) -> sent | failed, or
    skipped (no longer in the audience when its turn came)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class ContentFormat(StrEnum):
    """How a campaign's or template's body is written; ``content_source`` holds it in that
    form and :func:`campaigns.content.compile_content` turns it into the HTML and text that
    are previewed and sent. Ordered from highest to lowest: a body can be converted down to
    ``html`` (never up)."""

    VISUAL = "visual"  # MJML from the drag-and-drop editor
    RICHTEXT = "richtext"  # HTML from the rich-text editor, sanitised, themed
    MARKDOWN = "markdown"  # markdown, themed
    HTML = "html"  # raw HTML, the marketer's responsibility
    PLAIN = "plain"  # plain text; a minimal HTML part is generated from it


class Campaign(Base):
    """An email written once and sent to an audience (lists, later segments).

    Status: draft -> scheduled -> sending <-> paused -> sent, or cancelled from any of them.
    """

    __tablename__ = "campaigns"
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    from_email: Mapped[str] = mapped_column(String(320), default="")
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    # The body as written (MJML, rich text, markdown, HTML or text, per ``content_format``)...
    content_format: Mapped[ContentFormat] = mapped_column(
        status_type(ContentFormat, name="content_format"),
        default=ContentFormat.HTML,
        server_default=ContentFormat.HTML.value,
    )
    content_source: Mapped[str] = mapped_column(Text, default="", server_default="")
    # ... and compiled from it when saved (campaigns.content.compile_content): what is
    # previewed and sent. Written only with the source.
    html_body: Mapped[str] = mapped_column(Text, default="")
    # Empty: generated from the HTML when the campaign is compiled.
    text_body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CampaignStatus] = mapped_column(
        status_type(CampaignStatus), default=CampaignStatus.DRAFT, index=True
    )
    track_opens: Mapped[bool] = mapped_column(Boolean, default=True)
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Why the campaign paused itself (transport errors), shown on its page.
    pause_reason: Mapped[str] = mapped_column(Text, default="")
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    # Last time a worker claimed or marked a message: the reconciler re-enqueues when stale.
    last_progress_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Last time messages reached an outcome (sent, failed, skipped, deferred), written per claim
    # and every few seconds during one: a sending campaign is flagged as stalled from it.
    last_outcome_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The last transport or platform error of the send path (never a recipient's), the cause
    # the stall flag shows; cleared when messages reach an outcome again.
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Send-time optimisation: each recipient at its best hour in [start, end), hours of the
    # account's time zone (converted to the engine's UTC hours at the start), from the
    # Delivery Optimization Engine; recipients it knows too little of go at the window's start.
    best_hour_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_hour_end: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CampaignList(Base):
    """A list a campaign goes to."""

    __tablename__ = "campaign_lists"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="CASCADE"), primary_key=True
    )


class CampaignSegment(Base):
    """A segment a campaign goes to (ids passed to the audience query, resolved there)."""

    __tablename__ = "campaign_segments"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Link(Base):
    """A link found in a campaign's body; clicks are counted per link."""

    __tablename__ = "links"
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = (UniqueConstraint("campaign_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)


class Message(Base):
    """One send of a campaign to one contact: claimed before SMTP, marked after.

    The unique (campaign, contact) pair makes a second send to the same person impossible.
    Status: pending -> claimed -> sent | failed | skipped (or back to pending for a retry).
    """

    __tablename__ = "messages"
    # Every index is written again by each claim and each mark (status and claim change, so
    # no update is HOT): only the ones queries need. By campaign: the unique pair and the
    # (campaign, status, due) index; claims in flight: a partial index of claimed rows only.
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        Index("ix_messages_campaign_status_due", "campaign_id", "status", "due_at", "id"),
        Index(
            "ix_messages_claims",
            "claim_token",
            "claimed_at",
            postgresql_where=text("status = 'claimed'"),
            sqlite_where=text("status = 'claimed'"),
        ),
        # Its id is in tracking and unsubscribe links: never reused on SQLite (migration 0307).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # Set to NULL when the contact is erased: the row stays for the campaign's counts.
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    status: Mapped[MessageStatus] = mapped_column(
        status_type(MessageStatus), default=MessageStatus.PENDING
    )
    # Not before this time: the start, a 4xx retry's backoff, or a per-recipient send time.
    due_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The claim (one worker's batch) this row belongs to while it is being sent.
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Found by the row id it names (:func:`campaigns.bounces.find_message`): no index.
    smtp_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # hard | soft | complaint, once a bounce or complaint came back for this message.
    bounce_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The A/B test variant (its position, 0 = A) this message carries; None without a test,
    # and for the rest of the audience until the winner is chosen (campaigns/ab_tests.py).
    ab_variant: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # True for the rest of an A/B test's audience (held, then sent the winner): the test's
    # figures count only the test share.
    ab_rest: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class CampaignDomainCount(Base):
    """A campaign's messages sent and failed per recipient domain (the part after the "@",
    lower-cased; counts only), kept once the campaign is over: the report reads these rows
    instead of counting every message by its contact's domain. Written by
    :mod:`campaigns.delivery_domains`; an erasure takes the person's messages out of them, as
    the report computed from the messages would."""

    __tablename__ = "campaign_domain_counts"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


class CampaignMessageCount(Base):
    """A campaign's messages by status as counted at ``counted_at`` (counts only).

    Counting a million messages by status takes about 0.2 s, and the progress bar polls it
    while sending, the dashboard and the campaign list show it for every campaign. So a
    campaign of at least ``PROGRESS_SNAPSHOT_FROM`` messages is counted by the reconciler
    (every ``RECONCILE_INTERVAL_SECONDS`` while it sends or is paused, once more when it is
    over) and its pages read this row; smaller campaigns are counted on each request
    (:func:`campaigns.queries.message_counts`). Written when the campaign starts (all
    pending) and by :mod:`campaigns.progress_counts`.
    """

    __tablename__ = "campaign_message_counts"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    total: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Messages sent per second between the last two counts (0 when there was none before).
    rate_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    counted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Bounce(Base):
    """A bounce or complaint mapped back to its message: the status code, never the body."""

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # hard | soft | complaint
    source: Mapped[str] = mapped_column(String(16))  # smtp | dsn | arf | ses | webhook
    diagnostic: Mapped[str] = mapped_column(String(64), default="")  # e.g. "550 5.1.1"
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Sender(Base):
    """A From address an account may use, once its owner confirmed it by email."""

    __tablename__ = "senders"
    # Its id is in emailed links or tokens: never reused on SQLite (migration 0307).
    __table_args__ = (UniqueConstraint("account_id", "email"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    verified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SmtpServer(Base):
    """One of an account's SMTP servers, with its own rate and connection limits."""

    __tablename__ = "smtp_servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # smtp://user:pass@host:587 (see core.mail), stored encrypted (core/secrets.py).
    url: Mapped[str] = mapped_column(EncryptedText)
    max_per_second: Mapped[float] = mapped_column(Float, default=0.0)  # 0: unlimited
    max_connections: Mapped[int] = mapped_column(Integer, default=2)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by bullets (what the UI shows)."""
        return mask_smtp_url(self.url)


class DkimKey(Base):
    """An account's DKIM key for one signing domain (private key in PEM)."""

    __tablename__ = "dkim_keys"
    __table_args__ = (UniqueConstraint("account_id", "domain"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(String(255))
    selector: Mapped[str] = mapped_column(String(63))
    # Stored encrypted (core/secrets.py); the UI shows only the public DNS record.
    private_key_pem: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SendingSettings(Base):
    """An account's sending limits."""

    __tablename__ = "sending_settings"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    max_per_second: Mapped[float] = mapped_column(Float, default=0.0)  # 0: unlimited
    max_per_domain: Mapped[int] = mapped_column(Integer, default=0)  # concurrent; 0: unlimited


class Template(Base):
    """A reusable body (HTML, optional text) an account starts campaigns from."""

    __tablename__ = "campaign_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500), default="")
    # As on Campaign: the body as written, and the HTML compiled from it when saved.
    content_format: Mapped[ContentFormat] = mapped_column(
        status_type(ContentFormat, name="content_format"),
        default=ContentFormat.HTML,
        server_default=ContentFormat.HTML.value,
    )
    content_source: Mapped[str] = mapped_column(Text, default="", server_default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ABTestStatus(StrEnum):
    """An A/B test: draft (set up, the campaign not started) -> testing (the test share is
    sent, the winner not chosen yet) -> awaiting (winner chosen, the marketer confirms sending
    the rest) -> done (the rest released with the winner)."""

    DRAFT = "draft"
    TESTING = "testing"
    AWAITING = "awaiting"
    DONE = "done"


class ABMetric(StrEnum):
    """What picks the winner: human unique opens or human unique clicks."""

    OPENS = "opens"
    CLICKS = "clicks"


#: Bounds of an A/B test (checked by the service and the database).
AB_MIN_PERCENT, AB_MAX_PERCENT = 10, 50
AB_MAX_VARIANTS = 4
#: ``due_at`` of the messages an A/B test holds for its winner: later than any claim looks.
AB_HELD = datetime(9999, 12, 31)


class ABTest(Base):
    """A campaign's A/B test: ``test_percent`` of the audience split evenly and randomly
    between the variants; ``wait_minutes`` after the start the winner (by ``metric``, human
    events only) is chosen and the rest gets it, at once (``auto_send``) or once confirmed."""

    __tablename__ = "ab_tests"
    __table_args__ = (
        CheckConstraint("metric IN ('opens', 'clicks')", name="metric"),
        CheckConstraint(
            f"test_percent >= {AB_MIN_PERCENT} AND test_percent <= {AB_MAX_PERCENT}",
            name="test_percent",
        ),
        CheckConstraint("wait_minutes >= 1", name="wait_minutes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[ABTestStatus] = mapped_column(
        status_type(ABTestStatus), default=ABTestStatus.DRAFT
    )
    metric: Mapped[str] = mapped_column(String(16), default=ABMetric.OPENS.value)
    test_percent: Mapped[int] = mapped_column(Integer, default=20)
    wait_minutes: Mapped[int] = mapped_column(Integer, default=240)
    auto_send: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when the campaign starts: the scheduler job chooses the winner once it has passed.
    decide_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    winner: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ABVariant(Base):
    """One variant of an A/B test (position 0 is A): its subject and, optionally, its sender
    name (empty: the campaign's)."""

    __tablename__ = "ab_variants"
    __table_args__ = (UniqueConstraint("ab_test_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ab_test_id: Mapped[int] = mapped_column(ForeignKey("ab_tests.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(500))
    from_name: Mapped[str] = mapped_column(String(200), default="")


class TransactionalStatus(StrEnum):
    """One transactional message: queued (waiting, being sent or retried after a deferral) ->
    sent | failed (with its reason); a sent one becomes bounced when a bounce comes back."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"


class TransactionalMessage(Base):
    """One triggered message (a receipt, a password mail of the account's own product) to one
    address, sent through the campaigns' pipeline (campaigns/transactional.py).

    The content (subject, bodies, personalisation data) is kept only until the message reaches
    a final state, then cleared: what stays is who, when, the outcome and its reason.
    """

    __tablename__ = "transactional_messages"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key"),
        Index("ix_transactional_messages_account_created", "account_id", "created_at"),
        # Its id is in its Message-ID and VERP address: never reused on SQLite.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # The account's contact with this address when there was one (NULL: not a contact, or erased).
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    to_email: Mapped[str] = mapped_column(String(320))
    to_name: Mapped[str] = mapped_column(String(200), default="")
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_templates.id", ondelete="SET NULL"), nullable=True
    )
    # Cleared once the message reached a final state (sent, failed).
    subject: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # A digest of what was asked: the same key with another message is refused.
    request_digest: Mapped[str] = mapped_column(String(64), default="")
    track_opens: Mapped[bool] = mapped_column(Boolean, default=False)
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[TransactionalStatus] = mapped_column(
        status_type(TransactionalStatus), default=TransactionalStatus.QUEUED, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A worker's claim (a lease, as for campaign messages) and when it began the SMTP exchange.
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    smtp_started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    smtp_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Why it failed (or was deferred); never the recipient's address.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    bounce_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    bounce_diagnostic: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
