"""The reconciler: repairs sending from database state (the database, not the queue, says what
is left to do). It starts due scheduled campaigns, recovers the claims of dead workers,
re-enqueues campaigns whose queue messages were lost and finishes campaigns with nothing left;
the same for transactional messages (:func:`campaigns.sending.transactional.recover`).

It runs on the scheduler every ``RECONCILE_INTERVAL_SECONDS`` (10 s by default). With nothing to
do it costs five indexed reads: the due scheduled campaigns, the sending ones, and three of
queued transactional messages (by status)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.sql import ColumnElement

from campaigns import progress_counts
from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from campaigns.sending import transactional
from campaigns.sending.claims import chain_of
from campaigns.sending.delivery import (
    INTERRUPTED,
    UNCERTAIN_PER_CLAIM,
    finish_if_done,
    retry_delay,
)
from campaigns.sending.servers import enqueue_chains
from campaigns.services import start_scheduled
from campaigns.settings import setting
from core import db, queue
from core.db import rowcount, utcnow


@dataclass(frozen=True)
class ReconcileReport:
    """What one :func:`reconcile` run did."""

    started: int
    recovered_claims: int
    interrupted: int
    requeued_campaigns: int
    finished: int
    #: Transactional messages failed as interrupted, and enqueued again.
    transactional_interrupted: int = 0
    transactional_requeued: int = 0


def reconcile(now: datetime | None = None) -> ReconcileReport:
    """Repair sending from database state; safe to run at any time, twice or concurrently.

    1. Scheduled campaigns that are due are started.
    2. Claims whose lease was not renewed for ``SEND_CLAIM_TIMEOUT`` belong to dead workers (a
       live one renews it every quarter of that and stops sending at half of it): the first
       :data:`UNCERTAIN_PER_CLAIM` unmarked rows in id order are marked failed as
       "interrupted" (they may have been accepted: never resent), the others return to
       pending, and the claim's send chain is enqueued again (its queue message died with the
       worker, or waits for the broker to notice).
    3. Sending campaigns with due rows, no live claim and no progress for ``SEND_CLAIM_TIMEOUT``
       (their queue messages were lost, e.g. Redis restarted without persistence, or a worker
       was killed between claims) get their chains again, unless a transport error's backoff
       is still running.
    4. Sending campaigns with nothing left are marked sent.
    5. The kept message counts that are due are refreshed (:mod:`campaigns.progress_counts`).
    6. Transactional messages: the same for dead workers' claims and lost queue messages
       (:func:`campaigns.sending.transactional.recover`).
    """
    from campaigns import tasks

    now = now or utcnow()
    started = 0
    for campaign_id in db.session.scalars(
        select(Campaign.id).where(
            Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= now
        )
    ).all():
        started += int(start_scheduled(campaign_id, now))

    lease = timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
    stale_before = now - lease
    sending = db.session.scalars(
        select(Campaign).where(Campaign.status == CampaignStatus.SENDING)
    ).all()
    recovered = 0
    interrupted = 0
    requeued = 0
    finished = 0
    for campaign in sending:
        # The partial index of claimed rows: only claims in flight are read.
        dead = db.session.scalars(
            select(Message.claim_token)
            .where(
                Message.campaign_id == campaign.id,
                Message.status == MessageStatus.CLAIMED,
                Message.claimed_at < stale_before,
            )
            .distinct()
        ).all()
        for token in dead:
            if token is None:
                continue
            interrupted += _recover_claim(token)
            recovered += 1
            queue.enqueue_after_commit(tasks.send_batch, campaign.id, chain_of(token))
            db.session.commit()
        if dead:
            requeued += 1
            continue
        live_claim = _first(campaign.id, Message.status == MessageStatus.CLAIMED)
        due = _first(campaign.id, Message.status == MessageStatus.PENDING, Message.due_at <= now)
        if live_claim is None and due is not None:
            idle = campaign.last_progress_at is None or campaign.last_progress_at < stale_before
            backing_off = (
                campaign.consecutive_errors
                and campaign.last_error_at is not None
                and now - campaign.last_error_at
                < timedelta(seconds=retry_delay(campaign.consecutive_errors))
            )
            if idle and not backing_off:
                campaign.last_progress_at = now
                enqueue_chains(campaign)
                requeued += 1
                db.session.commit()
        elif (
            live_claim is None
            and _first(campaign.id, Message.status == MessageStatus.PENDING) is None
        ):
            finish_if_done(campaign)
            db.session.refresh(campaign)
            finished += int(campaign.status == CampaignStatus.SENT)
    db.session.commit()
    progress_counts.refresh_due(now)
    tx_interrupted, tx_requeued = transactional.recover(now)
    return ReconcileReport(
        started, recovered, interrupted, requeued, finished, tx_interrupted, tx_requeued
    )


def _recover_claim(token: str) -> int:
    """Fail a dead claim's first unmarked rows as interrupted, give the others back; commit.
    Returns how many were failed."""
    # Sent in id order: the first unmarked rows are the ones SMTP may have accepted.
    uncertain = db.session.scalars(
        select(Message.id)
        .where(Message.claim_token == token, Message.status == MessageStatus.CLAIMED)
        .order_by(Message.id)
        .limit(UNCERTAIN_PER_CLAIM)
    ).all()
    failed = 0
    if uncertain:
        failed = rowcount(
            db.session.execute(
                update(Message)
                .where(
                    Message.id.in_(uncertain),
                    Message.claim_token == token,
                    Message.status == MessageStatus.CLAIMED,
                )
                .values(status=MessageStatus.FAILED, claim_token=None, error=INTERRUPTED)
            )
        )
    db.session.execute(
        update(Message)
        .where(Message.claim_token == token, Message.status == MessageStatus.CLAIMED)
        .values(status=MessageStatus.PENDING, claim_token=None, claimed_at=None)
    )
    db.session.commit()
    return failed


def _first(campaign_id: int, *conditions: ColumnElement[bool]) -> int | None:
    """The id of one of the campaign's rows matching ``conditions`` (an index probe), or None."""
    return db.session.scalar(
        select(Message.id).where(Message.campaign_id == campaign_id, *conditions).limit(1)
    )
