"""Reads about campaigns, always scoped to one account (or to one campaign id for reports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from campaigns.models import (
    Bounce,
    Campaign,
    DkimKey,
    Message,
    Sender,
    SendingSettings,
    SmtpServer,
    Template,
)
from core import db
from core.db import utcnow
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
        }


def progress(campaign: Campaign) -> Progress:
    """Counts by status and the send rate of the last 10 seconds."""
    counts = dict(
        db.session.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign.id)
            .group_by(Message.status)
        ).all()
    )
    recent = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.campaign_id == campaign.id,
            Message.status == "sent",
            Message.sent_at >= utcnow() - timedelta(seconds=10),
        )
    )
    return Progress(
        status=campaign.status,
        total=sum(int(v) for v in counts.values()),
        sent=int(counts.get("sent", 0)),
        failed=int(counts.get("failed", 0)),
        skipped=int(counts.get("skipped", 0)),
        pending=int(counts.get("pending", 0)) + int(counts.get("claimed", 0)),
        rate_per_second=(recent or 0) / 10.0,
        pause_reason=campaign.pause_reason,
    )


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


def preview_contacts(account_id: int, limit: int = 50) -> list[tuple[int, str]]:
    """(id, label) of some of the account's contacts to preview a campaign as."""
    rows = db.session.execute(
        select(Contact.id, Contact.email, Contact.name)
        .where(Contact.account_id == account_id)
        .order_by(Contact.id)
        .limit(limit)
    ).all()
    return [(cid, f"{name} <{email}>" if name else email) for cid, email, name in rows]
