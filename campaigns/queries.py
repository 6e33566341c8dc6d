"""Reads about campaigns, always scoped to one account (or to one campaign id for reports)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Subquery, exists, func, or_, select

from campaigns.models import (
    Bounce,
    Campaign,
    CampaignList,
    CampaignMessageCount,
    CampaignSegment,
    CampaignStatus,
    DkimKey,
    Message,
    MessageStatus,
    Sender,
    SendingSettings,
    SmtpServer,
    Template,
    TransactionalMessage,
)
from campaigns.settings import setting
from core import db
from core.db import utcnow
from core.errors import NotFoundError
from core.pagination import Page, window
from privacy import policy
from subscribers.models import Contact


def list_campaigns(account_id: int, limit: int = 100) -> list[Campaign]:
    """The account's campaigns, newest first."""
    return list(
        db.session.scalars(
            select(Campaign)
            .where(Campaign.account_id == account_id)
            .order_by(Campaign.id.desc())
            .limit(limit)
        )
    )


def single_list_audiences(campaign_ids: Sequence[int] | None = None) -> Subquery:
    """(campaign_id, list_id) for every campaign (of ``campaign_ids`` when given) whose
    audience is exactly one list and no segment: the list its unsubscribe leaves. A campaign to
    several lists or to segments has no row (its unsubscribe leaves every list). The audience
    itself is only ``campaign_lists``."""
    has_segment = exists().where(CampaignSegment.campaign_id == CampaignList.campaign_id)
    query = select(CampaignList.campaign_id, func.min(CampaignList.list_id).label("list_id"))
    if campaign_ids is not None:
        query = query.where(CampaignList.campaign_id.in_(list(campaign_ids)))
    return (
        query.where(~has_segment)
        .group_by(CampaignList.campaign_id)
        .having(func.count() == 1)
        .subquery("single_list_audiences")
    )


def unsubscribe_list_id(campaign_id: int) -> int | None:
    """The one list an unsubscribe from this campaign leaves, or None for every list."""
    single = single_list_audiences([campaign_id])
    found: int | None = db.session.scalar(
        select(single.c.list_id).where(single.c.campaign_id == campaign_id)
    )
    return found


def bounce_counts(campaign_id: int) -> dict[str, int]:
    """Messages of the campaign that bounced hard, soft, or drew a complaint:
    ``{"hard": n, "soft": n, "complaint": n}`` (each message counted once per kind)."""
    rows = db.session.execute(
        select(Bounce.kind, func.count(func.distinct(Bounce.message_id)))
        .join(Message, Message.id == Bounce.message_id)
        .where(Message.campaign_id == campaign_id)
        .group_by(Bounce.kind)
    ).all()
    counts = {"hard": 0, "soft": 0, "complaint": 0}
    counts.update({kind: int(n) for kind, n in rows})
    return counts


@dataclass(frozen=True)
class Progress:
    """Where a campaign's sending stands (the progress bar polls this)."""

    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    pending: int
    rate_per_second: float
    pause_reason: str
    #: "No progress since HH:MM UTC: <cause>" for a stalled campaign (:func:`stall`), else "".
    stalled: str = ""

    @property
    def percent(self) -> int:
        done = self.sent + self.failed + self.skipped
        return int(100 * done / self.total) if self.total else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "total": self.total,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "pending": self.pending,
            "percent": self.percent,
            "rate_per_second": round(self.rate_per_second, 1),
            "pause_reason": self.pause_reason,
            "stalled": self.stalled,
        }


@dataclass(frozen=True)
class MessageCounts:
    """A campaign's messages by status, and the send rate (messages per second)."""

    total: int
    pending: int  # pending or claimed
    sent: int
    failed: int
    skipped: int
    rate_per_second: float


def _kept_counts(campaign: Campaign, now: datetime) -> CampaignMessageCount | None:
    """The kept counts when they are current (see :mod:`campaigns.progress_counts`): exact for
    a campaign that is over and counted after its end (a cancelled one: after its last claim's
    lease), at most three reconciler intervals old for a large one in flight."""
    kept = db.session.get(CampaignMessageCount, campaign.id)
    if kept is None:
        return None
    finished = campaign.finished_at
    if campaign.status == CampaignStatus.SENT:
        return kept if finished is not None and kept.counted_at >= finished else None
    if campaign.status == CampaignStatus.CANCELLED:
        lease = timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
        return kept if finished is not None and kept.counted_at >= finished + lease else None
    fresh = now - kept.counted_at <= timedelta(seconds=3 * setting("RECONCILE_INTERVAL_SECONDS"))
    if kept.total >= int(setting("PROGRESS_SNAPSHOT_FROM")) and fresh:
        return kept
    return None


def message_counts(campaign: Campaign) -> MessageCounts:
    """The campaign's messages by status: the kept counts when current, else counted now
    (with the rate of the last 10 seconds)."""
    now = utcnow()
    kept = _kept_counts(campaign, now)
    if kept is not None:
        return MessageCounts(
            total=kept.total,
            pending=kept.pending + kept.claimed,
            sent=kept.sent,
            failed=kept.failed,
            skipped=kept.skipped,
            rate_per_second=kept.rate_per_second if campaign.status == "sending" else 0.0,
        )
    counts = dict(
        db.session.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign.id)
            .group_by(Message.status)
        ).all()
    )
    recent = 0
    if campaign.status == CampaignStatus.SENDING:
        recent = int(
            db.session.scalar(
                select(func.count())
                .select_from(Message)
                .where(
                    Message.campaign_id == campaign.id,
                    Message.status == "sent",
                    Message.sent_at >= now - timedelta(seconds=10),
                )
            )
            or 0
        )
    return MessageCounts(
        total=sum(int(v) for v in counts.values()),
        pending=int(counts.get(MessageStatus.PENDING, 0))
        + int(counts.get(MessageStatus.CLAIMED, 0)),
        sent=int(counts.get(MessageStatus.SENT, 0)),
        failed=int(counts.get(MessageStatus.FAILED, 0)),
        skipped=int(counts.get(MessageStatus.SKIPPED, 0)),
        rate_per_second=recent / 10.0,
    )


def progress(campaign: Campaign) -> Progress:
    """Counts by status and the send rate (see :func:`message_counts`)."""
    counts = message_counts(campaign)
    return Progress(
        status=campaign.status,
        total=counts.total,
        sent=counts.sent,
        failed=counts.failed,
        skipped=counts.skipped,
        pending=counts.pending,
        rate_per_second=counts.rate_per_second,
        pause_reason=campaign.pause_reason,
        stalled=_stall_text(stall(campaign)),
    )


@dataclass(frozen=True)
class Stall:
    """A sending campaign without progress: since when, and the likeliest cause."""

    since: datetime
    cause: str

    def text(self) -> str:
        return f"No progress since {self.since:%H:%M} UTC: {self.cause}"


def _stall_text(found: Stall | None) -> str:
    return found.text() if found is not None else ""


NO_WORKER = "no worker is running (no batch of this campaign is being sent)."
SLOW_WORKER = (
    "a worker holds a batch but no message reached an outcome (a slow SMTP server or a low "
    "rate limit?)."
)


def stall(campaign: Campaign, now: datetime | None = None) -> Stall | None:
    """The stall of a sending campaign with due work whose messages reached no outcome for
    ``SEND_STALL_SECONDS``, or None. The cause is the send path's last transport or platform
    error when there is one, else whether any worker holds a live claim of it. A campaign
    waiting only for retries that are not due yet is not stalled. Reads at most two rows'
    worth when not stalled (one comparison, no query)."""
    if campaign.status != "sending":
        return None
    now = now or utcnow()
    moments = [t for t in (campaign.last_outcome_at, campaign.started_at) if t is not None]
    if not moments:
        return None
    since = max(moments)
    if (now - since).total_seconds() < float(setting("SEND_STALL_SECONDS")):
        return None
    due = db.session.scalar(
        select(Message.id)
        .where(
            Message.campaign_id == campaign.id,
            or_(
                (Message.status == "pending") & (Message.due_at <= now),
                Message.status == "claimed",
            ),
        )
        .limit(1)
    )
    if due is None:
        return None
    if campaign.last_error:
        return Stall(since, campaign.last_error)
    live_after = now - timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
    live = db.session.scalar(
        select(Message.id)
        .where(
            Message.campaign_id == campaign.id,
            Message.status == "claimed",
            Message.claimed_at > live_after,
        )
        .limit(1)
    )
    return Stall(since, SLOW_WORKER if live is not None else NO_WORKER)


@dataclass(frozen=True)
class FailedRecipient:
    """A failed message of a campaign: whom it was for (empty once the contact was erased)
    and the reason stored when it failed."""

    email: str
    name: str
    reason: str


FAILED_PAGE_SIZE = 25


def _failed_rows(campaign_id: int) -> Any:
    return (
        select(Message.id, Contact.email, Contact.name, Message.error)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id, Message.status == "failed")
        .order_by(Message.id)
    )


def _failed(row: Any) -> FailedRecipient:
    _id, email, name, error = row
    if email is None:  # erasure clears the row's contact and its reason
        return FailedRecipient("", "", error or "the reason was erased with the contact")
    return FailedRecipient(email, name or "", error or "failed")


def failed_recipients(campaign_id: int, page: int = 1) -> Page[FailedRecipient]:
    """One page of the campaign's failed messages with their reasons, in send order."""
    total = int(
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.campaign_id == campaign_id, Message.status == "failed")
        )
        or 0
    )
    page, pages, offset = window(total, page, FAILED_PAGE_SIZE)
    rows = db.session.execute(
        _failed_rows(campaign_id).offset(offset).limit(FAILED_PAGE_SIZE)
    ).all()
    return Page([_failed(row) for row in rows], page, pages, total)


def iter_failed_recipients(campaign_id: int) -> Iterator[FailedRecipient]:
    """Every failed message of the campaign, in send order, read 1,000 at a time (keyset)."""
    last_id = 0
    query = _failed_rows(campaign_id)
    while True:
        rows = db.session.execute(query.where(Message.id > last_id).limit(1000)).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield from (_failed(row) for row in rows)


def senders(account_id: int) -> list[Sender]:
    """The account's sender addresses, verified or not."""
    return list(
        db.session.scalars(
            select(Sender).where(Sender.account_id == account_id).order_by(Sender.email)
        )
    )


def verified_sender_choices(account_id: int) -> list[tuple[str, str]]:
    """(address, label) of the account's verified senders, for a select box."""
    return [
        (s.email, f"{s.name} <{s.email}>" if s.name else s.email)
        for s in senders(account_id)
        if s.verified_at is not None
    ]


def smtp_servers(account_id: int) -> list[SmtpServer]:
    """The account's SMTP servers."""
    return list(
        db.session.scalars(
            select(SmtpServer).where(SmtpServer.account_id == account_id).order_by(SmtpServer.id)
        )
    )


def dkim_keys(account_id: int) -> list[DkimKey]:
    """The account's DKIM keys."""
    return list(
        db.session.scalars(
            select(DkimKey).where(DkimKey.account_id == account_id).order_by(DkimKey.domain)
        )
    )


def sending_settings(account_id: int) -> SendingSettings:
    """The account's limits (defaults when never set)."""
    found = db.session.get(SendingSettings, account_id)
    return found or SendingSettings(account_id=account_id, max_per_second=0.0, max_per_domain=0)


def templates(account_id: int) -> list[Template]:
    """The account's reusable templates, by name."""
    return list(
        db.session.scalars(
            select(Template).where(Template.account_id == account_id).order_by(Template.name)
        )
    )


def preview_contacts(account_id: int, limit: int = 50, q: str = "") -> list[tuple[int, str]]:
    """(id, label) of some of the account's contacts to preview a campaign as (those whose
    address or name contains ``q``, when given): only contacts
    :func:`privacy.policy.may_process` allows (a preview renders their data)."""
    query = select(Contact.id, Contact.email, Contact.name).where(
        Contact.account_id == account_id, policy.may_process_condition(Contact)
    )
    if q.strip():
        pattern = (
            "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            Contact.email.ilike(pattern, escape="\\") | Contact.name.ilike(pattern, escape="\\")
        )
    rows = db.session.execute(query.order_by(Contact.id).limit(limit)).all()
    return [(cid, f"{name} <{email}>" if name else email) for cid, email, name in rows]


#: How many of an account's most recent contacts the field picker reads attribute names from.
FIELD_SAMPLE = 2000


def personalisation_fields(account_id: int) -> list[str]:
    """The personalisation fields the compose page offers: the contact's own fields, then each
    attribute name found on the account's latest contacts (as ``contact.attributes.name``, or
    ``contact.attributes["a name"]`` when it is not an identifier), sorted."""
    rows = db.session.scalars(
        select(Contact.attributes)
        .where(Contact.account_id == account_id)
        .order_by(Contact.id.desc())
        .limit(FIELD_SAMPLE)
    )
    names: set[str] = set()
    for attributes in rows:
        if isinstance(attributes, dict):
            names.update(str(key) for key in attributes)
    fields = ["contact.first_name", "contact.name", "contact.email"]
    for name in sorted(names, key=str.casefold):
        if name.isidentifier() and name.isascii():
            fields.append(f"contact.attributes.{name}")
        elif '"' not in name and "\\" not in name and "}" not in name and "%" not in name:
            fields.append(f'contact.attributes["{name}"]')
    return fields


@dataclass(frozen=True)
class TransactionalState:
    """What can be read back of a transactional message: never its content."""

    id: int
    status: str  # queued | sent | failed | bounced
    to: str  # empty once the person's data was erased
    from_email: str
    reason: str | None  # why it failed, or the last deferral while it is queued
    bounce_kind: str | None  # hard | soft | complaint
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    bounced_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (times as ISO 8601 UTC with a Z)."""

        def when(value: datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") + "Z" if value else None

        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "bounce_kind": self.bounce_kind,
            "attempts": self.attempts,
            "created_at": when(self.created_at),
            "sent_at": when(self.sent_at),
            "failed_at": when(self.failed_at),
            "bounced_at": when(self.bounced_at),
        }


def _transactional_state(row: TransactionalMessage) -> TransactionalState:
    return TransactionalState(
        id=row.id,
        status=str(row.status),
        to=row.to_email,
        from_email=row.from_email,
        reason=row.error,
        bounce_kind=row.bounce_kind,
        attempts=row.attempts,
        created_at=row.created_at,
        sent_at=row.sent_at,
        failed_at=row.failed_at,
        bounced_at=row.bounced_at,
    )


def transactional_status(account_id: int, message_id: int) -> TransactionalState:
    """The state of one of the account's transactional messages; NotFoundError otherwise."""
    row = db.session.scalar(
        select(TransactionalMessage).where(
            TransactionalMessage.id == message_id, TransactionalMessage.account_id == account_id
        )
    )
    if row is None:
        raise NotFoundError("transactional message")
    return _transactional_state(row)


def recent_transactional(account_id: int, limit: int = 100) -> list[TransactionalState]:
    """The account's latest transactional messages, newest first."""
    rows = db.session.scalars(
        select(TransactionalMessage)
        .where(TransactionalMessage.account_id == account_id)
        .order_by(TransactionalMessage.created_at.desc(), TransactionalMessage.id.desc())
        .limit(limit)
    )
    return [_transactional_state(row) for row in rows]
