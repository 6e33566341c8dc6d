"""The accounts package's store of personal data (registered in ``privacy.registry``): the
logins of marketers (users, their sessions, sender addresses).

Each function takes a ``privacy.registry.Person`` and follows the contract written in
``privacy/registry.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from core import db
from core.db import iso

if TYPE_CHECKING:
    from privacy.registry import Person, Records


def report_users(person: Person) -> Records:
    """A marketer login with the address: name, since, last login, and the accounts it may
    use (a person who is also a contact sees both)."""
    from accounts.models import Account, Membership, User

    if not person.address or not person.platform_wide:
        return {}
    records = []
    for user in db.session.scalars(
        select(User).where(func.lower(User.email) == person.address.lower())
    ):
        accounts = db.session.scalars(
            select(Account.name)
            .join(Membership, Membership.account_id == Account.id)
            .where(Membership.user_id == user.id)
            .order_by(Account.name)
        ).all()
        records.append(
            {
                "login": user.email,
                "name": user.name,
                "since": iso(user.created_at),
                "last_login": iso(user.last_login_at),
                "accounts": ", ".join(accounts),
            }
        )
    return {None: records} if records else {}
