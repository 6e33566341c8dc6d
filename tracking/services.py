"""Storing tracking hits through the privacy layer, and the unsubscribe action."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from accounts.models import Account
from campaigns.models import Campaign, Message
from core import db
from core.db import utcnow
from privacy import engine_gate, policy
from subscribers import services as subscriber_services
from subscribers.models import Contact, Subscription
from tracking.models import TrackingEvent


@dataclass(frozen=True)
class Hit:
    """A tracking hit after :func:`privacy.policy.minimise`: nothing raw is left in it."""

    kind: str  # open | click | unsubscribe
    campaign_id: int
    message_id: int | None
    link_id: int | None
    ip_prefix: str | None
    ua_class: str
    occurred_at: datetime = field(default_factory=utcnow)


def _contact_state(message: Message | None, list_id: int | None) -> policy.ContactState | None:
    if message is None:
        return None
    if message.contact_id is None:
        return policy.ContactState(exists=False)
    contact = db.session.get(Contact, message.contact_id)
    if contact is None:
        return policy.ContactState(exists=False)
    unsubscribed = False
    if list_id is not None:
        status = db.session.scalar(
            select(Subscription.status).where(
                Subscription.contact_id == contact.id, Subscription.list_id == list_id
            )
        )
        unsubscribed = status == "unsubscribed"
    return policy.ContactState(
        unsubscribed=unsubscribed,
        restricted=contact.restricted_at is not None,
        objected=contact.objected_at is not None,
        consent_withdrawn=contact.consent_withdrawn_at is not None,  # privacy: art. 7(3)
    )


def ingest(hits: Iterable[Hit]) -> int:
    """Store a batch of hits as the privacy layer decides; return how many events were written.

    Hits for unknown campaigns, or whose message belongs to another campaign, are dropped.
    """
    written = 0
    campaigns: dict[int, tuple[Campaign, Account] | None] = {}
    for hit in hits:
        if hit.campaign_id not in campaigns:
            campaign = db.session.get(Campaign, hit.campaign_id)
            account = db.session.get(Account, campaign.account_id) if campaign else None
            campaigns[hit.campaign_id] = (campaign, account) if campaign and account else None
        found = campaigns[hit.campaign_id]
        if found is None:
            continue
        campaign, account = found
        message = db.session.get(Message, hit.message_id) if hit.message_id else None
        if hit.message_id is not None and (message is None or message.campaign_id != campaign.id):
            continue
        decision = policy.decide(
            policy.TrackingContext(
                kind=hit.kind,
                individual_tracking=account.individual_tracking,
                track_opens=campaign.track_opens,
                track_clicks=campaign.track_clicks,
                identified_token=hit.message_id is not None,
                contact=_contact_state(message, campaign.list_id),
            )
        )
        if decision is policy.Decision.DROP:
            continue
        db.session.add(
            TrackingEvent(
                account_id=account.id,
                campaign_id=campaign.id,
                link_id=hit.link_id,
                message_id=hit.message_id if decision is policy.Decision.IDENTIFIED else None,
                kind=hit.kind,
                occurred_at=hit.occurred_at,
                is_machine=hit.ua_class in policy.MACHINE_UA_CLASSES,
                ip_prefix=hit.ip_prefix if decision is policy.Decision.IDENTIFIED else None,
                ua_class=hit.ua_class,
            )
        )
        # engine input (one call; re-apply after merging)
        engine_gate.record_engagement(
            account.id,
            hit.message_id,
            hit.kind,
            hit.occurred_at,
            hit.ua_class in policy.MACHINE_UA_CLASSES,
        )
        written += 1
    db.session.commit()
    return written


def record_hit(hit: Hit) -> None:
    """Store one hit. Never raises: tracking must not break the answer to the recipient."""
    try:
        ingest([hit])
    except Exception:
        db.session.rollback()
        import logging

        logging.getLogger(__name__).exception("could not store a %s hit", hit.kind)


def unsubscribe_message_recipient(
    message_id: int, reduced: policy.ReducedRequest, method: str
) -> bool:
    """Unsubscribe the recipient of a message from the campaign's list. Idempotent.

    Returns False when the message is unknown or its contact is gone (already erased).
    """
    message = db.session.get(Message, message_id)
    if message is None:
        return False
    campaign = db.session.get(Campaign, message.campaign_id)
    if campaign is None or message.contact_id is None:
        return False
    changed = subscriber_services.unsubscribe_contact(
        account_id=campaign.account_id,
        contact_id=message.contact_id,
        list_id=campaign.list_id,
        source=f"unsubscribe:{method}",
    )
    if changed:
        ingest(
            [
                Hit(
                    kind="unsubscribe",
                    campaign_id=campaign.id,
                    message_id=message.id,
                    link_id=None,
                    ip_prefix=reduced.ip_prefix,
                    ua_class=reduced.ua_class,
                )
            ]
        )
    return True
