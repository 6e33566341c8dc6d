"""The campaigns package's stores of personal data (registered in ``privacy.registry``):
messages, bounces, transactional messages and campaign error texts.

Each function takes a ``privacy.registry.Person`` and follows the contract written in
``privacy/registry.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import ColumnElement, delete, false, func, or_, select, update

from core import db
from core.db import iso, utcnow

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
    from campaigns import delivery_domains
    from campaigns.models import Message

    delivery_domains.remove_person(person.contact_ids)
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


def _transactional_of(person: Person) -> ColumnElement[bool]:
    """The person's transactional messages: to one of their contacts or to their address (in
    the account that erases, or every account when the person asked)."""
    from campaigns.models import TransactionalMessage as Tx

    found: list[ColumnElement[bool]] = []
    if person.contact_ids:
        found.append(Tx.contact_id.in_(person.contact_ids))
    if person.address:
        found.append(func.lower(Tx.to_email) == person.address.lower())
    condition = or_(*found) if found else false()
    if person.account_id is not None:
        condition = condition & (Tx.account_id == person.account_id)
    return condition


def report_transactional(person: Person) -> Records:
    """Each transactional email to the person: sender, status, reason, times (no content)."""
    from campaigns.models import TransactionalMessage as Tx

    found: Records = {}
    rows = db.session.scalars(select(Tx).where(_transactional_of(person)).order_by(Tx.id))
    for row in rows:
        key = row.contact_id if row.contact_id in person.contact_ids else None
        found.setdefault(key, []).append(
            {
                "from": row.from_email,
                "status": row.status,
                "reason": row.error,
                "queued_at": iso(row.created_at),
                "sent_at": iso(row.sent_at),
                "bounced_at": iso(row.bounced_at),
            }
        )
    return found


def erase_transactional(person: Person) -> None:
    """Nothing in the rows names the person any more (address, name, content, reason); a
    message still queued is failed, never sent."""
    from campaigns.models import TransactionalMessage as Tx
    from campaigns.models import TransactionalStatus

    cleared: dict[str, Any] = {
        "to_email": "",
        "to_name": "",
        "contact_id": None,
        "subject": "",
        "html_body": "",
        "text_body": "",
        "data": None,
        "error": None,
    }
    rows = db.session.execute(select(Tx.id, Tx.status).where(_transactional_of(person))).all()
    if not rows:
        return
    db.session.execute(
        update(Tx)
        .where(Tx.id.in_([row_id for row_id, _ in rows]))
        .values(**cleared)
        .execution_options(synchronize_session=False)
    )
    queued = [row_id for row_id, status in rows if status == TransactionalStatus.QUEUED]
    if queued:
        db.session.execute(
            update(Tx)
            .where(Tx.id.in_(queued), Tx.status == TransactionalStatus.QUEUED)
            .values(
                status=TransactionalStatus.FAILED,
                claim_token=None,
                error="erased before it was sent",
                failed_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )


def purge_transactional(now: datetime) -> int:
    """Delete transactional messages older than ``TRANSACTIONAL_RETENTION_DAYS`` that are no
    longer queued; commits. Returns how many went."""
    from campaigns.models import TransactionalMessage as Tx
    from campaigns.models import TransactionalStatus

    cutoff = now - timedelta(days=int(current_app.config["TRANSACTIONAL_RETENTION_DAYS"]))
    result = db.session.execute(
        delete(Tx)
        .where(Tx.created_at < cutoff, Tx.status != TransactionalStatus.QUEUED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
