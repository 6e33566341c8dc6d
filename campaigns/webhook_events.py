"""The campaign package's webhook events (webhooks.events.emit): message sent, failed,
bounced and complained, campaign started and finished. Each asks the cached "does any
endpoint listen" first, so an account without endpoints pays one dictionary lookup."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from campaigns.models import Campaign, Message
from core import db
from subscribers.models import Contact
from webhooks.events import emit, emit_many, subscribed
from webhooks.models import EventType


def _payload(message: Message, campaign_id: int, email: str | None) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "campaign_id": campaign_id,
        "contact_id": message.contact_id,
        "email": email,
    }


def messages_sent(account_id: int, campaign_id: int, message_ids: list[int]) -> None:
    """``message.sent`` for each accepted message of a claim: when an endpoint listens, one read
    of the claim's rows, one of the endpoints and two batched writes per claim; nothing
    otherwise. No commit."""
    if not message_ids or not subscribed(account_id, EventType.MESSAGE_SENT):
        return
    rows = db.session.execute(
        select(Message, Contact.email)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .where(Message.id.in_(message_ids))
        .order_by(Message.id)
    )
    items = [(_payload(message, campaign_id, email), message.contact_id) for message, email in rows]
    emit_many(account_id, EventType.MESSAGE_SENT, items)


def message_event(
    message_id: int, event_type: EventType, extra: dict[str, Any] | None = None
) -> None:
    """A message event (failed, bounced, complained) with ``extra`` fields. No commit."""
    row = db.session.execute(
        select(Message, Campaign.account_id, Contact.email)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .where(Message.id == message_id)
    ).first()
    if row is None:
        return
    message, account_id, email = row
    if not subscribed(account_id, event_type):
        return
    data = {**_payload(message, message.campaign_id, email), **(extra or {})}
    emit(account_id, event_type, data, contact_id=message.contact_id)


def campaign_event(campaign: Campaign, event_type: EventType) -> None:
    """``campaign.started`` or ``campaign.finished`` (ids, name, counts; no person). No
    commit."""
    if not subscribed(campaign.account_id, event_type):
        return
    data: dict[str, Any] = {"campaign_id": campaign.id, "name": campaign.name}
    if event_type is EventType.CAMPAIGN_FINISHED:
        counts = dict(
            db.session.execute(
                select(Message.status, func.count())
                .where(Message.campaign_id == campaign.id)
                .group_by(Message.status)
            ).all()
        )
        data["counts"] = {str(status): int(n) for status, n in counts.items()}
    emit(campaign.account_id, event_type, data)


def transactional_event(
    message_id: int, event_type: EventType, extra: dict[str, Any] | None = None
) -> None:
    """A transactional message's event (sent, failed, bounced, complained): its id (as
    ``transactional_message_id``), the address and ``extra``; no campaign. No commit."""
    from campaigns.models import TransactionalMessage

    message = db.session.get(TransactionalMessage, message_id)
    if message is None or not subscribed(message.account_id, event_type):
        return
    contact_id = db.session.scalar(
        select(Contact.id).where(
            Contact.account_id == message.account_id,
            func.lower(Contact.email) == message.to_email.lower(),
        )
    )
    data: dict[str, Any] = {
        "transactional_message_id": message.id,
        "contact_id": contact_id,
        "email": message.to_email or None,
        **(extra or {}),
    }
    emit(message.account_id, event_type, data, contact_id=contact_id)
