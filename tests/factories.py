"""Plain factory helpers: make rows through the services, as the UI would."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask.testing import FlaskClient

from accounts import services as accounts
from campaigns import services as campaigns
from subscribers import services as subscribers

PASSWORD = "correct horse battery"


@dataclass
class Tenant:
    account_id: int
    user_id: int
    email: str


def make_tenant(
    email: str = "owner@shop.example", name: str = "Shop", postal: str = "1 Main St"
) -> Tenant:
    account, user = accounts.sign_up(name, "Owner", email, PASSWORD, of_age=True)
    if postal:
        accounts.update_general_settings(account.id, name, postal)
    return Tenant(account.id, user.id, user.email)


def make_list_with_contacts(tenant: Tenant, addresses: list[str], name: str = "News") -> int:
    mailing_list = subscribers.create_list(tenant.account_id, name)
    for address in addresses:
        subscribers.add_contact_to_list(tenant.account_id, mailing_list.id, address)
    return mailing_list.id


def make_engine_suppressed(other: Tenant, address: str) -> None:
    """Another account's complaint about ``address``: the engine then suppresses it for every
    participating account. Commits."""
    from core import db
    from core.db import utcnow
    from privacy import engine_gate

    make_list_with_contacts(other, [address], name="Complainers")
    engine_gate.record_delivery_outcome(other.account_id, None, address, "complained", utcnow())
    db.session.commit()


def make_campaign(
    tenant: Tenant, list_id: int, html: str | None = None, subject: str = "Hello"
) -> int:
    campaign = campaigns.save_campaign(
        tenant.account_id,
        campaign_id=None,
        name=subject,
        subject=subject,
        from_name="Shop",
        from_email="news@shop.example",
        html_body=html
        or '<html><body><p>Hi</p><a href="https://shop.example/a?x=1&amp;y=2">A</a> '
        '<a href="https://shop.example/b">B</a></body></html>',
        list_id=list_id,
    )
    return campaign.id


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


def id_from_location(location: str, prefix: str) -> int:
    match = re.search(rf"{prefix}/(\d+)", location)
    assert match, location
    return int(match.group(1))


def make_member(tenant: Tenant, email: str, role: str = "member") -> int:
    """Add a member with ``role`` (``owner``/``admin``/``member`` or ``role:<id>``) who can log
    in with PASSWORD at once (the invitation link is skipped). Returns the user id."""
    from accounts.models import User
    from core import db

    user = accounts.add_member(tenant.account_id, "owner", email, "", role)
    stored = db.session.get(User, user.id)
    assert stored is not None
    stored.password_hash = accounts._hasher.hash(PASSWORD)
    db.session.commit()
    return user.id
