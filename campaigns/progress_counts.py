"""The kept counts of a large campaign's messages by status (:class:`CampaignMessageCount`).

A campaign of at least ``PROGRESS_SNAPSHOT_FROM`` messages is counted here instead of on each
request: when it starts (every message pending, from the number inserted), by the send
reconciler every ``RECONCILE_INTERVAL_SECONDS`` while it sends or is paused, and once more when
it is over (after the last claim's lease for a cancelled one, whose claims in flight may still
mark rows). Its pages then read one row, at most an interval old while it sends and exact once
it is over (:func:`campaigns.queries.message_counts` decides which to read). Every campaign
that is over gets its counts kept once, whatever its size: they cannot change any more; its
delivery by domain is kept then too (:mod:`campaigns.delivery_domains`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from campaigns import delivery_domains
from campaigns.models import (
    Campaign,
    CampaignDomainCount,
    CampaignMessageCount,
    CampaignStatus,
    Message,
    MessageStatus,
)
from campaigns.settings import setting
from core import db
from core.db import utcnow

#: Statuses whose kept counts are refreshed on every reconciler run.
IN_FLIGHT = (CampaignStatus.SENDING, CampaignStatus.PAUSED)
#: Campaigns that are over without kept counts, counted per reconciler run.
BACKFILL_PER_RUN = 20


def record_start(campaign_id: int, total: int, now: datetime | None = None) -> None:
    """Keep the counts of a campaign that has just made ``total`` messages, all pending, when
    it is large enough (no commit: part of the start's transaction)."""
    if total < int(setting("PROGRESS_SNAPSHOT_FROM")):
        return
    found = db.session.get(CampaignMessageCount, campaign_id)
    if found is None:
        found = CampaignMessageCount(campaign_id=campaign_id)
        db.session.add(found)
    found.total, found.pending = total, total
    found.claimed = found.sent = found.failed = found.skipped = 0
    found.rate_per_second = 0.0
    found.counted_at = now or utcnow()


def refresh(campaign_id: int, now: datetime | None = None) -> CampaignMessageCount:
    """Count the campaign's messages by status now and keep the figures, with the send rate
    since the previous count (no commit)."""
    now = now or utcnow()
    counts: dict[str, int] = dict(
        db.session.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.status)
        ).all()
    )
    found = db.session.get(CampaignMessageCount, campaign_id)
    if found is None:
        found = CampaignMessageCount(campaign_id=campaign_id, sent=0, counted_at=now)
        db.session.add(found)
    sent = int(counts.get("sent", 0))
    elapsed = (now - found.counted_at).total_seconds() if found.counted_at else 0.0
    found.rate_per_second = (
        max(sent - (found.sent or 0), 0) / elapsed if 0 < elapsed <= 120 else 0.0
    )
    found.total = sum(int(n) for n in counts.values())
    found.pending = int(counts.get("pending", 0))
    found.claimed = int(counts.get("claimed", 0))
    found.sent = sent
    found.failed = int(counts.get("failed", 0))
    found.skipped = int(counts.get("skipped", 0))
    found.counted_at = now
    return found


def refresh_due(now: datetime | None = None) -> int:
    """Refresh the kept counts that are due; commit. Returns how many campaigns were counted.

    Due: a large campaign in flight (every run); a sent campaign counted before it ended; a
    cancelled one not counted since its last claim's lease ran out; and, a few per run, a
    campaign that is over and has no kept counts (a small one, or one over before migration
    0324): counted once, its figures cannot change any more."""
    now = now or utcnow()
    threshold = int(setting("PROGRESS_SNAPSHOT_FROM"))
    lease = timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
    kept = CampaignMessageCount
    cancelled_settled = (Campaign.status == CampaignStatus.CANCELLED) & (
        Campaign.finished_at <= now - lease
    )
    candidates = db.session.execute(
        select(Campaign.id, Campaign.status, Campaign.finished_at, kept.counted_at)
        .join(kept, kept.campaign_id == Campaign.id)
        .where(
            (Campaign.status.in_(IN_FLIGHT) & (kept.total >= threshold))
            | ((Campaign.status == CampaignStatus.SENT) & (kept.counted_at < Campaign.finished_at))
            | cancelled_settled
        )
    ).all()
    due = [
        row.id
        for row in candidates
        if row.status != CampaignStatus.CANCELLED
        or (row.finished_at is not None and row.counted_at < row.finished_at + lease)
    ]
    over_without = db.session.scalars(
        select(Campaign.id)
        .where(
            (Campaign.status == CampaignStatus.SENT) | cancelled_settled,
            ~select(kept.campaign_id).where(kept.campaign_id == Campaign.id).exists(),
        )
        .order_by(Campaign.id)
        .limit(BACKFILL_PER_RUN)
    ).all()
    over = {row.id for row in candidates if row.status not in IN_FLIGHT} | set(over_without)
    for campaign_id in [*due, *over_without]:
        refresh(campaign_id, now)
        if campaign_id in over:  # its final counts: keep its delivery by domain too
            delivery_domains.keep(campaign_id)
    # Campaigns over with final counts but no delivery by domain (over before migration 0330).
    for campaign_id in db.session.scalars(
        select(Campaign.id)
        .where(
            (Campaign.status == CampaignStatus.SENT) | cancelled_settled,
            select(kept.campaign_id).where(kept.campaign_id == Campaign.id).exists(),
            ~select(CampaignDomainCount.campaign_id)
            .where(CampaignDomainCount.campaign_id == Campaign.id)
            .exists(),
            select(Message.id)
            .where(
                Message.campaign_id == Campaign.id,
                Message.status.in_((MessageStatus.SENT, MessageStatus.FAILED)),
                Message.contact_id.is_not(None),
            )
            .exists(),
        )
        .order_by(Campaign.id)
        .limit(BACKFILL_PER_RUN)
    ).all():
        if campaign_id not in over:
            delivery_domains.keep(campaign_id)
    db.session.commit()
    return len(due) + len(over_without)
