"""The registry of everything the platform holds about a contact, for access, export and erasure.

A *provider* answers for one kind of personal data linked to contacts (subscriptions, messages,
tracking events; consent records, bounces and engine data are registered by their packages).
Access reports, portable exports and erasure all walk the same registry, so a table that
registers a provider can never be forgotten by one of them.

Registering a provider (at import time, in a module the app factory imports, e.g. the
package's ``models.py`` or ``tasks.py``)::

    from privacy import subject_data

    def _export(contact_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        ...  # {contact id: [flat JSON-serialisable records]}; contacts with nothing may be absent

    def _erase(contact_ids: list[int]) -> None:
        ...  # delete or anonymise the rows of these contacts; flush, do not commit

    subject_data.register(subject_data.Provider(
        name="bounces", title="Bounces", order=40, export=_export, erase=_erase,
        provided_by_person=False,
    ))

Rules for providers:

- ``export`` returns, per contact id, a list of flat records (str/int/float/bool/None values,
  datetimes as ISO strings). The record is shown in the access report and goes into the
  portable export.
- ``erase`` runs inside the erasure transaction *before* the contact rows are deleted, so it
  can still read ``contacts.email`` (for tables keyed by an address hash use
  :func:`subscribers.suppression.address_hash`). After it, nothing of the provider's may name
  the contacts (directly, by their address, or through a row that still links to them).
- ``order``: lower runs first, both in reports and in erasure (events before messages, since
  events are found through their messages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from core import db

Records = dict[int, list[dict[str, Any]]]


@dataclass(frozen=True)
class Provider:
    """One kind of personal data linked to contacts."""

    name: str
    title: str
    order: int
    export: Callable[[list[int]], Records]
    erase: Callable[[list[int]], None]
    # True when the person gave it (portability, art. 20, covers provided and observed data).
    provided_by_person: bool = False


_PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> None:
    """Add (or replace, by name) a provider. Idempotent, so modules may be imported twice."""
    _PROVIDERS[provider.name] = provider


def providers() -> list[Provider]:
    """Every registered provider, in order."""
    return sorted(_PROVIDERS.values(), key=lambda p: (p.order, p.name))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


# --- Built-in providers for the tables of the foundation -------------------------------------


def _export_subscriptions(contact_ids: list[int]) -> Records:
    from subscribers.models import MailingList, Subscription

    rows = db.session.execute(
        select(Subscription, MailingList.name)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.contact_id.in_(contact_ids))
        .order_by(Subscription.id)
    ).all()
    found: Records = {}
    for subscription, list_name in rows:
        found.setdefault(subscription.contact_id, []).append(
            {
                "list": list_name,
                "status": subscription.status,
                "since": _iso(subscription.created_at),
                "changed": _iso(subscription.updated_at),
            }
        )
    return found


def _erase_subscriptions(contact_ids: list[int]) -> None:
    from subscribers.models import Subscription

    db.session.execute(delete(Subscription).where(Subscription.contact_id.in_(contact_ids)))


def _export_messages(contact_ids: list[int]) -> Records:
    from campaigns.models import Campaign, Message
    from campaigns.render import Recipient
    from campaigns.subjects import shown_subject
    from subscribers.models import Contact

    rows = db.session.execute(
        select(Message, Campaign.name, Campaign.subject, Contact)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.contact_id.in_(contact_ids))
        .order_by(Message.id)
    ).all()
    found: Records = {}
    for message, campaign_name, template, contact in rows:
        assert message.contact_id is not None
        # The subject as this person got it (their data), not the campaign's template code.
        recipient = Recipient(message.id, contact.email, contact.name, contact.attributes or {})
        shown = shown_subject(template, recipient)
        subject = f"{shown.raw} (template)" if shown.failed else shown.text
        found.setdefault(message.contact_id, []).append(
            {
                "campaign": campaign_name,
                "subject": subject,
                "status": message.status,
                "sent_at": _iso(message.sent_at),
            }
        )
    return found


def _erase_messages(contact_ids: list[int]) -> None:
    from campaigns.models import Message

    # The row stays for the campaign's counts; nothing in it names the person any more (an
    # SMTP error text may quote the address, so it goes too).
    db.session.execute(
        update(Message)
        .where(Message.contact_id.in_(contact_ids))
        .values(contact_id=None, error=None)
        .execution_options(synchronize_session=False)
    )


def _export_events(contact_ids: list[int]) -> Records:
    from campaigns.models import Campaign, Link, Message
    from tracking.models import TrackingEvent

    rows = db.session.execute(
        select(TrackingEvent, Message.contact_id, Campaign.name, Link.url)
        .join(Message, Message.id == TrackingEvent.message_id)
        .join(Campaign, Campaign.id == TrackingEvent.campaign_id)
        .outerjoin(Link, Link.id == TrackingEvent.link_id)
        .where(Message.contact_id.in_(contact_ids))
        .order_by(TrackingEvent.id)
    ).all()
    found: Records = {}
    for event, contact_id, campaign_name, url in rows:
        found.setdefault(contact_id or 0, []).append(
            {
                "kind": event.kind,
                "campaign": campaign_name,
                "link": url,
                "at": _iso(event.occurred_at),
                "device_class": event.ua_class,
                "automated": event.is_machine,
            }
        )
    return found


def _erase_events(contact_ids: list[int]) -> None:
    from campaigns.models import Message
    from tracking.models import TrackingEvent

    # Identified events become anonymous ones: the link to the message (and so the person)
    # goes (events keep no network prefix at all since migration 0312).
    message_ids = select(Message.id).where(Message.contact_id.in_(contact_ids))
    db.session.execute(
        update(TrackingEvent)
        .where(TrackingEvent.message_id.in_(message_ids))
        .values(message_id=None)
        .execution_options(synchronize_session=False)
    )


register(
    Provider(
        name="lists",
        title="Lists and subscriptions",
        order=10,
        export=_export_subscriptions,
        erase=_erase_subscriptions,
        provided_by_person=True,
    )
)
register(
    Provider(
        name="tracking_events",
        title="Opens and clicks recorded about you",
        order=20,
        export=_export_events,
        erase=_erase_events,
    )
)
register(
    Provider(
        name="messages",
        title="Emails sent to you",
        order=30,
        export=_export_messages,
        erase=_erase_messages,
    )
)
