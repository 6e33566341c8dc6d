"""The campaigns package's stores of personal data (registered in ``privacy.registry``):
messages, bounces, and campaign error texts.

Each function takes a ``privacy.registry.Person`` and follows the contract written in
``privacy/registry.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from core import db
from core.db import iso

if TYPE_CHECKING:
    from privacy.registry import Person, Records


def report_messages(person: Person) -> Records:
    """Each email sent to the contacts: campaign, the subject as they got it, status, time."""
    from campaigns.models import Campaign, Message
    from campaigns.render import Recipient
    from campaigns.subjects import shown_subject
    from subscribers.models import Contact

    rows = db.session.execute(
        select(Message, Campaign.name, Campaign.subject, Contact)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.contact_id.in_(person.contact_ids))
        .order_by(Message.id)
    ).all()
    found: Records = {}
    for message, campaign_name, template, contact in rows:
        # The subject as this person got it (their data), not the campaign's template code.
        recipient = Recipient(message.id, contact.email, contact.name, contact.attributes or {})
        shown = shown_subject(template, recipient)
        subject = f"{shown.raw} (template)" if shown.failed else shown.text
        found.setdefault(message.contact_id, []).append(
            {
                "campaign": campaign_name,
                "subject": subject,
                "status": message.status,
                "sent_at": iso(message.sent_at),
            }
        )
    return found


def erase_messages(person: Person) -> None:
    """The rows stay for the campaigns' counts; nothing in them names the person any more
    (an SMTP error text may quote the address, so it goes too)."""
    from campaigns.models import Message

    db.session.execute(
        update(Message)
        .where(Message.contact_id.in_(person.contact_ids))
        .values(contact_id=None, error=None)
        .execution_options(synchronize_session=False)
    )


def report_bounces(person: Person) -> Records:
    """Bounces and complaints about emails to the contacts: kind, source, status code, time."""
    from campaigns.models import Bounce, Campaign, Message

    rows = db.session.execute(
        select(Bounce, Message.contact_id, Campaign.name)
        .join(Message, Message.id == Bounce.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.contact_id.in_(person.contact_ids))
        .order_by(Bounce.id)
    ).all()
    found: Records = {}
    for bounce, contact_id, campaign_name in rows:
        found.setdefault(contact_id, []).append(
            {
                "campaign": campaign_name,
                "kind": bounce.kind,
                "source": bounce.source,
                "status_code": bounce.diagnostic,
                "at": iso(bounce.occurred_at),
            }
        )
    return found


def erase_bounces(person: Person) -> None:
    """A bounce names its message only, which erasure unlinks from the person; its status
    code is no personal data. The row stays for the campaign's bounce count."""


def report_campaign_errors(person: Person) -> Records:
    """Campaign error texts of the contacts' accounts that quote the address."""
    from campaigns.models import Campaign

    if not person.address:
        return {}
    rows = db.session.execute(
        select(Campaign.name, Campaign.last_error_at).where(
            Campaign.account_id.in_(person.account_ids),
            func.lower(Campaign.last_error).contains(person.address.lower(), autoescape=True),
        )
    ).all()
    records = [{"campaign": name, "at": iso(at)} for name, at in rows]
    return {None: records} if records else {}


def erase_campaign_errors(person: Person) -> None:
    """Clear every campaign error text that quotes the address (any account)."""
    from campaigns.models import Campaign

    if person.address:
        db.session.execute(
            update(Campaign)
            .where(
                func.lower(Campaign.last_error).contains(person.address.lower(), autoescape=True)
            )
            .values(last_error="")
            .execution_options(synchronize_session=False)
        )
