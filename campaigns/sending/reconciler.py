"""The reconciler: repairs sending from database state (the database, not the queue, says what
is left to do). It starts due scheduled campaigns, recovers the claims of dead workers,
re-enqueues campaigns whose queue messages were lost and finishes campaigns with nothing left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from campaigns.models import Campaign, Message
from campaigns.sending.delivery import UNCERTAIN_PER_CLAIM, finish_if_done
from campaigns.sending.servers import enqueue_chains
from campaigns.services import start_scheduled
from campaigns.settings import setting
from core import db
from core.db import rowcount, utcnow


@dataclass(frozen=True)
class ReconcileReport:
    """What one :func:`reconcile` run did."""

    started: int
    recovered_claims: int
    interrupted: int
    requeued_campaigns: int
    finished: int


def reconcile(now: datetime | None = None) -> ReconcileReport:
    """Repair sending from database state; safe to run at any time, twice or concurrently.

    1. Scheduled campaigns that are due are started.
    2. Claims older than ``SEND_CLAIM_TIMEOUT`` belong to dead workers (a live one gives its
       claim back after half that time): the first :data:`UNCERTAIN_PER_CLAIM` unmarked rows
       in id order are marked failed as "interrupted" (they may have been accepted: never
       resent), the others return to pending.
    3. Sending campaigns with due work and no progress for ``SEND_STALL_SECONDS`` (their queue
       messages were lost, e.g. Redis restarted without persistence) get their chains again.
    4. Sending campaigns with nothing left are marked sent.
    """
    now = now or utcnow()
    started = 0
    for campaign_id in db.session.scalars(
        select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
    ).all():
        started += int(start_scheduled(campaign_id, now))

    stale_before = now - timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
    tokens = db.session.scalars(
        select(Message.claim_token)
        .where(Message.status == "claimed", Message.claimed_at < stale_before)
        .distinct()
    ).all()
    interrupted = 0
    for token in tokens:
        # Sent in id order: the first unmarked rows are the ones SMTP may have accepted.
        uncertain = db.session.scalars(
            select(Message.id)
            .where(Message.claim_token == token, Message.status == "claimed")
            .order_by(Message.id)
            .limit(UNCERTAIN_PER_CLAIM)
        ).all()
        if not uncertain:
            continue
        interrupted += rowcount(
            db.session.execute(
                update(Message)
                .where(
                    Message.id.in_(uncertain),
                    Message.claim_token == token,
                    Message.status == "claimed",
                )
                .values(
                    status="failed",
                    claim_token=None,
                    error="interrupted during the SMTP exchange; not resent to avoid a duplicate",
                )
            )
        )
        db.session.execute(
            update(Message)
            .where(Message.claim_token == token, Message.status == "claimed")
            .values(status="pending", claim_token=None, claimed_at=None)
        )
        db.session.commit()

    stalled_before = now - timedelta(seconds=float(setting("SEND_STALL_SECONDS")))
    requeued = 0
    finished = 0
    sending = db.session.scalars(select(Campaign).where(Campaign.status == "sending")).all()
    for campaign in sending:
        due = db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.campaign_id == campaign.id,
                or_(
                    and_(Message.status == "pending", Message.due_at <= now),
                    Message.status == "claimed",
                ),
            )
        )
        stalled = campaign.last_progress_at is None or campaign.last_progress_at < stalled_before
        if due and stalled:
            campaign.last_progress_at = now
            enqueue_chains(campaign)
            requeued += 1
            db.session.commit()
        elif not due and not _has_pending(campaign.id):
            finish_if_done(campaign)
            db.session.refresh(campaign)
            finished += int(campaign.status == "sent")
    db.session.commit()
    return ReconcileReport(started, len(tokens), interrupted, requeued, finished)


def _has_pending(campaign_id: int) -> bool:
    return (
        db.session.scalar(
            select(Message.id)
            .where(Message.campaign_id == campaign_id, Message.status == "pending")
            .limit(1)
        )
        is not None
    )
