"""Every write and rule about lists, contacts and subscriptions. Scoped to an account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core import db
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from subscribers.models import Contact, MailingList, Subscription
from subscribers.normalise import normalise_email


def get_list(account_id: int, list_id: int) -> MailingList:
    """The account's list, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(MailingList).where(MailingList.id == list_id, MailingList.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("list")
    return found


def get_contact(account_id: int, contact_id: int) -> Contact:
    """The account's contact, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("contact")
    return found


def create_list(account_id: int, name: str, description: str = "") -> MailingList:
    """Create a list in the account."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the list a name.", field="name")
    mailing_list = MailingList(account_id=account_id, name=name, description=description.strip())
    db.session.add(mailing_list)
    db.session.commit()
    return mailing_list


def add_contact_to_list(
    account_id: int,
    list_id: int,
    email: str,
    name: str = "",
    attributes: dict[str, Any] | None = None,
    source: str = "manual",
) -> Contact:
    """Add (or find) the contact by normalised address and subscribe it to the list."""
    mailing_list = get_list(account_id, list_id)
    address = normalise_email(email)
    # Erased, unsubscribed everywhere, bounced or blocked addresses are never added back.
    from subscribers.suppression import suppression_reason

    if suppression_reason(account_id, address) is not None:
        raise ValidationError(f"{address} is suppressed and cannot be added.", field="email")
    contact = db.session.scalar(
        select(Contact).where(Contact.account_id == account_id, Contact.email == address)
    )
    if contact is None:
        contact = Contact(
            account_id=account_id,
            email=address,
            name=name.strip(),
            attributes=attributes or {},
            source=source,
        )
        db.session.add(contact)
        db.session.flush()
    subscription = db.session.scalar(
        select(Subscription).where(
            Subscription.contact_id == contact.id, Subscription.list_id == mailing_list.id
        )
    )
    if subscription is None:
        db.session.add(
            Subscription(contact_id=contact.id, list_id=mailing_list.id, status="subscribed")
        )
    elif subscription.status == "unsubscribed":
        raise ValidationError(
            f"{address} unsubscribed from this list; only they can subscribe again.", field="email"
        )
    db.session.commit()
    return contact


def unsubscribe_contact(account_id: int, contact_id: int, list_id: int | None, source: str) -> bool:
    """Unsubscribe a contact from one list (or every list when ``list_id`` is None).

    Idempotent. Returns True when the contact exists in the account.
    """
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if contact is None:
        return False
    query = select(Subscription).where(Subscription.contact_id == contact.id)
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    now = utcnow()
    for subscription in db.session.scalars(query):
        if subscription.status != "unsubscribed":
            subscription.status = "unsubscribed"
            subscription.updated_at = now
    db.session.commit()
    return True
