"""Claims: how a worker takes rows to send and gives them back.

A claim marks up to ``SEND_BATCH_SIZE`` due ``pending`` rows ``claimed`` under a fresh token and
commits before any SMTP, so two workers never send one row. A claim is a lease: the worker
renews its rows' ``claimed_at`` every ``SEND_CLAIM_TIMEOUT / 4`` seconds while it holds them
(:data:`RENEW_SQL`, from the send loop's marker thread) and sends only while its last renewal is
younger than ``SEND_CLAIM_TIMEOUT / 2``; a claim not renewed for ``SEND_CLAIM_TIMEOUT`` is a dead
worker's (:mod:`.reconciler`). The token names the send chain that took it (:func:`chain_of`),
so the reconciler can start that chain again. Each row's outcome is written only while the claim
still holds it (:func:`mark_row`); rows not attempted go back at once (:func:`release_claim`).
At send time every claimed row is checked again against the audience and suppression
(:func:`eligible_recipients`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.sql import ColumnElement, Select

from campaigns import webhook_events
from campaigns.models import Campaign, Message, MessageStatus
from campaigns.render import Recipient
from campaigns.services import campaign_audience
from core import db
from privacy import engine_gate
from subscribers.models import Contact
from subscribers.suppression import suppressed_emails
from webhooks.models import EventType

#: Renews a live claim's lease (driver SQL, ``?`` placeholders): by campaign, token and status,
#: so it reads the partial index of claimed rows only.
RENEW_SQL = (
    "UPDATE messages SET claimed_at = ? "
    "WHERE campaign_id = ? AND claim_token = ? AND status = 'claimed'"
)


def claim_token(chain: int) -> str:
    """A fresh claim token naming the send chain that takes the claim (at most 32 chars)."""
    return f"{chain}.{uuid.uuid4().hex[:24]}"


def chain_of(token: str) -> int:
    """The send chain a claim token names (0 for tokens without one)."""
    head, dot, _ = token.partition(".")
    return int(head) if dot and head.isdigit() else 0


def claim(
    campaign_id: int, limit: int, now: datetime, chain: int = 0
) -> tuple[str, dict[int, int | None]]:
    """Claim up to ``limit`` due pending rows for this worker (send chain ``chain``); commit;
    return the token and each claimed row's contact id by row id, in send (id) order.

    Empty only when nothing is due: a claim lost to a concurrent worker is tried again.
    """
    token = claim_token(chain)
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement. A materialised CTE is evaluated once; as an IN (subquery) the planner
        # may run the locking subquery again for each row it updates and over-claim.
        due = (
            _due_rows(campaign_id, limit, now)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        claimed = _mark_claimed(campaign_id, Message.id == due.c.id, token, now)
        db.session.commit()
        return token, claimed
    for _attempt in range(10):
        ids = list(db.session.scalars(_due_rows(campaign_id, limit, now)))
        if not ids:
            db.session.commit()
            return token, {}
        claimed = _mark_claimed(campaign_id, Message.id.in_(ids), token, now)
        db.session.commit()
        if claimed:
            return token, claimed
        # another worker took these rows first: look again
    return token, {}


def _due_rows(campaign_id: int, limit: int, now: datetime) -> Select[int]:
    """The first ``limit`` due pending rows, in the (campaign, status, due_at, id) index's
    order: the scan stops after ``limit`` rows however many were sent before (ordered by id
    alone it would filter past every sent row on each claim: quadratic in the audience)."""
    return (
        select(Message.id)
        .where(
            Message.campaign_id == campaign_id,
            Message.status == MessageStatus.PENDING,
            Message.due_at <= now,
        )
        .order_by(Message.due_at, Message.id)
        .limit(limit)
    )


def _mark_claimed(
    campaign_id: int, rows: ColumnElement[bool], token: str, now: datetime
) -> dict[int, int | None]:
    """Mark the still pending ``rows`` claimed under ``token`` (no commit); their contact ids
    by row id, in id order."""
    result = db.session.execute(
        update(Message)
        .where(rows, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CLAIMED, claim_token=token, claimed_at=now)
        .returning(Message.id, Message.contact_id)
    )
    claimed = dict(sorted((row[0], row[1]) for row in result))
    if claimed:
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(last_progress_at=now)
        )
    return claimed


def eligible_recipients(campaign: Campaign, claimed: dict[int, int | None]) -> dict[int, Recipient]:
    """The claimed messages (row id -> contact id) whose contact may still be mailed right now:
    still in the audience (subscribed, not restricted or objecting) and not suppressed."""
    contact_by_message = {
        contact_id: message_id
        for message_id, contact_id in claimed.items()
        if contact_id is not None
    }
    # Filter the audience's own id column: with segments it is a UNION, and a condition on
    # the contacts table would join it as a cartesian product.
    audience = campaign_audience(campaign).subquery()
    still_in = set(
        db.session.scalars(select(audience.c.id).where(audience.c.id.in_(list(contact_by_message))))
    )
    rows = db.session.execute(
        select(Contact.id, Contact.email, Contact.name, Contact.attributes).where(
            Contact.id.in_(still_in)
        )
    ).all()
    emails = [row[1] for row in rows]
    suppressed = set(suppressed_emails(campaign.account_id, emails))
    # The optimisation engine's platform-wide suppression (empty for accounts that opted out).
    suppressed |= engine_gate.engine_suppressed(campaign.account_id, emails)
    return {
        contact_by_message[cid]: Recipient(contact_by_message[cid], email, name, attrs or {})
        for cid, email, name, attrs in rows
        if email not in suppressed
    }


def mark_row(message_id: int, token: str, **values: Any) -> None:
    """Record one row's outcome (only while this worker's claim still holds it); commit."""
    db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.claim_token == token)
        .values(claim_token=None, **values)
    )
    if values.get("status") == MessageStatus.FAILED:
        reason = {"reason": str(values.get("error") or "")}
        webhook_events.message_event(message_id, EventType.MESSAGE_FAILED, reason)
    db.session.commit()


def release_claim(token: str) -> None:
    """Give back the rows of a claim this worker did not attempt."""
    db.session.rollback()
    db.session.execute(
        update(Message)
        .where(Message.claim_token == token, Message.status == MessageStatus.CLAIMED)
        .values(status=MessageStatus.PENDING, claim_token=None, claimed_at=None)
    )
    db.session.commit()
