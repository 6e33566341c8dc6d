"""The tracking package's stores of personal data (registered in ``privacy.registry``):
identified open and click events, and unsubscribes through a message's link.

Each function takes a ``privacy.registry.Person`` and follows the contract written in
``privacy/registry.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from core import db
from core.db import iso

if TYPE_CHECKING:
    from privacy.registry import Person, Records


def report_events(person: Person) -> Records:
    """The identified events of the contacts' messages: kind, campaign, link, time, network
    prefix, device class, and whether it looked automated."""
    from campaigns.models import Campaign, Link, Message
    from tracking.models import TrackingEvent

    rows = db.session.execute(
        select(TrackingEvent, Message.contact_id, Campaign.name, Link.url)
        .join(Message, Message.id == TrackingEvent.message_id)
        .join(Campaign, Campaign.id == TrackingEvent.campaign_id)
        .outerjoin(Link, Link.id == TrackingEvent.link_id)
        .where(Message.contact_id.in_(person.contact_ids))
        .order_by(TrackingEvent.id)
    ).all()
    found: Records = {}
    for event, contact_id, campaign_name, url in rows:
        found.setdefault(contact_id, []).append(
            {
                "kind": event.kind,
                "campaign": campaign_name,
                "link": url,
                "at": iso(event.occurred_at),
                "device_class": event.ua_class,
                "automated": event.is_machine,
            }
        )
    return found


def erase_events(person: Person) -> None:
    """Identified events become anonymous ones: the link to the message (and so the person)
    goes (events keep no network prefix at all since migration 0312). The per-domain roll-up
    loses them first, as the events no longer tie them to a domain; the other roll-ups count
    anonymous events and stay as they are (see :mod:`tracking.rollups`)."""
    from campaigns.models import Message
    from tracking import rollups
    from tracking.models import TrackingEvent

    message_ids = select(Message.id).where(Message.contact_id.in_(person.contact_ids))
    rollups.forget_identified(message_ids)
    db.session.execute(
        update(TrackingEvent)
        .where(TrackingEvent.message_id.in_(message_ids))
        .values(message_id=None)
        .execution_options(synchronize_session=False)
    )


def report_unsubscribes(person: Person) -> Records:
    """Unsubscribes through the contacts' messages: campaign, status, times."""
    from campaigns.models import Campaign, Message
    from tracking.models import MessageUnsubscribe

    rows = db.session.execute(
        select(MessageUnsubscribe, Message.contact_id, Campaign.name)
        .join(Message, Message.id == MessageUnsubscribe.message_id)
        .join(Campaign, Campaign.id == MessageUnsubscribe.campaign_id)
        .where(Message.contact_id.in_(person.contact_ids))
        .order_by(MessageUnsubscribe.id)
    ).all()
    found: Records = {}
    for row, contact_id, campaign_name in rows:
        found.setdefault(contact_id, []).append(
            {
                "campaign": campaign_name,
                "status": row.status,
                "unsubscribed_at": iso(row.unsubscribed_at),
                "undone_at": iso(row.undone_at),
            }
        )
    return found
