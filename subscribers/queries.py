"""Reads about lists, contacts and subscriptions, always scoped to one account."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from core import db
from subscribers.models import Contact, MailingList, Subscription


@dataclass(frozen=True)
class ListSummary:
    id: int
    name: str
    description: str
    subscribed: int
    unsubscribed: int


def list_summaries(account_id: int) -> list[ListSummary]:
    """The account's lists with their subscriber counts, newest first."""
    subscribed = func.count(Subscription.id).filter(Subscription.status == "subscribed")
    unsubscribed = func.count(Subscription.id).filter(Subscription.status == "unsubscribed")
    rows = db.session.execute(
        select(MailingList, subscribed, unsubscribed)
        .outerjoin(Subscription, Subscription.list_id == MailingList.id)
        .where(MailingList.account_id == account_id)
        .group_by(MailingList.id)
        .order_by(MailingList.id.desc())
    ).all()
    return [
        ListSummary(ml.id, ml.name, ml.description, int(sub or 0), int(unsub or 0))
        for ml, sub, unsub in rows
    ]


def list_choices(account_id: int) -> list[tuple[int, str]]:
    """(id, name) of the account's lists, for select boxes."""
    rows = db.session.execute(
        select(MailingList.id, MailingList.name)
        .where(MailingList.account_id == account_id)
        .order_by(MailingList.name)
    ).all()
    return [(row[0], row[1]) for row in rows]


def list_members(account_id: int, list_id: int, limit: int = 200) -> list[tuple[Contact, str]]:
    """Contacts on a list with their subscription status."""
    rows = db.session.execute(
        select(Contact, Subscription.status)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(MailingList.id == list_id, MailingList.account_id == account_id)
        .order_by(Contact.email)
        .limit(limit)
    ).all()
    return [(contact, status) for contact, status in rows]


def contact_subscriptions(account_id: int, contact_id: int) -> list[tuple[MailingList, str]]:
    """The lists a contact is on, with status."""
    rows = db.session.execute(
        select(MailingList, Subscription.status)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .where(Subscription.contact_id == contact_id, MailingList.account_id == account_id)
        .order_by(MailingList.name)
    ).all()
    return [(ml, status) for ml, status in rows]


def recent_contacts(account_id: int, limit: int = 100) -> list[Contact]:
    """The account's contacts, newest first."""
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.account_id == account_id)
            .order_by(Contact.id.desc())
            .limit(limit)
        )
    )
