"""A restriction the person asked for stays until the person lifts it: no member, admin or
owner of an account can lift it; the account lifts only the restrictions it set itself."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from core import db as core_db
from privacy.models import DataRequest
from subscribers.models import Contact
from tests.factories import login, make_list_with_contacts, make_tenant
from tests.privacy.helpers import link_in, submit
from tests.smtp_sink import SMTPSink


def _contact(app: Flask, account_id: int, email: str) -> Contact:
    with app.app_context():
        found = core_db.session.scalar(
            select(Contact).where(Contact.account_id == account_id, Contact.email == email)
        )
        assert found is not None
        core_db.session.expunge(found)
        return found


def _person_asks(client: Any, smtp_sink: SMTPSink, address: str, kind: str) -> None:
    submit(client, address, kind)
    assert client.post(link_in(smtp_sink, address, "/privacy/confirm/")).status_code == 200


def test_no_one_in_the_account_can_lift_the_persons_restriction(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant()
        make_list_with_contacts(tenant, ["rae@example.org"])
    public = app.test_client()
    _person_asks(public, smtp_sink, "rae@example.org", "restrict")
    contact = _contact(app, tenant.account_id, "rae@example.org")
    assert contact.restricted_at is not None and contact.restricted_by == "person"

    owner = app.test_client()
    login(owner, tenant.email)  # the owner: the highest role
    page = owner.get(f"/privacy/contacts/{contact.id}").get_data(as_text=True)
    assert "This person asked for the restriction" in page
    assert 'name="lift"' not in page and "disabled" in page
    refused = owner.post(
        f"/privacy/contacts/{contact.id}/restrict", data={"lift": "1"}, follow_redirects=True
    )
    assert "only they can lift it" in refused.get_data(as_text=True)
    after = _contact(app, tenant.account_id, "rae@example.org")
    assert after.restricted_at == contact.restricted_at and after.restricted_by == "person"
    with app.app_context():
        lifts = core_db.session.scalars(
            select(DataRequest).where(DataRequest.kind == "lift-restriction")
        ).all()
        assert lifts == []

    # Restricting again from the account does not make it the account's.
    owner.post(f"/privacy/contacts/{contact.id}/restrict")
    assert _contact(app, tenant.account_id, "rae@example.org").restricted_by == "person"


def test_the_account_lifts_its_own_restriction_but_not_once_the_person_asked(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant()
        make_list_with_contacts(tenant, ["ola@example.org", "ivy@example.org"])
    owner = app.test_client()
    login(owner, tenant.email)
    ola = _contact(app, tenant.account_id, "ola@example.org")
    owner.post(f"/privacy/contacts/{ola.id}/restrict")
    restricted = _contact(app, tenant.account_id, "ola@example.org")
    assert restricted.restricted_at is not None and restricted.restricted_by == "account"
    page = owner.get(f"/privacy/contacts/{ola.id}").get_data(as_text=True)
    assert "Your account restricted processing" in page
    lifted = owner.post(
        f"/privacy/contacts/{ola.id}/restrict", data={"lift": "1"}, follow_redirects=True
    )
    assert "Restriction lifted." in lifted.get_data(as_text=True)
    after = _contact(app, tenant.account_id, "ola@example.org")
    assert after.restricted_at is None and after.restricted_by is None

    # The account restricted ivy, then ivy asked too: now it is hers.
    ivy = _contact(app, tenant.account_id, "ivy@example.org")
    owner.post(f"/privacy/contacts/{ivy.id}/restrict")
    _person_asks(app.test_client(), smtp_sink, "ivy@example.org", "restrict")
    assert _contact(app, tenant.account_id, "ivy@example.org").restricted_by == "person"
    owner.post(f"/privacy/contacts/{ivy.id}/restrict", data={"lift": "1"})
    assert _contact(app, tenant.account_id, "ivy@example.org").restricted_at is not None


def test_the_person_lifts_their_own_restriction_and_not_an_accounts(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    app.config["DATA_REQUEST_EMAIL_WINDOW"] = 0
    with app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        make_list_with_contacts(shop, ["kim@example.org"])
        club = make_tenant("owner@club.example", "Club")
        make_list_with_contacts(club, ["kim@example.org"])
    public = app.test_client()
    _person_asks(public, smtp_sink, "kim@example.org", "restrict")
    _person_asks(public, smtp_sink, "kim@example.org", "unrestrict")
    for account_id in (shop.account_id, club.account_id):
        lifted = _contact(app, account_id, "kim@example.org")
        assert lifted.restricted_at is None and lifted.restricted_by is None

    # The club restricts for a reason of its own: the person's lift leaves that one alone.
    club_owner = app.test_client()
    login(club_owner, "owner@club.example")
    club_owner.post(f"/privacy/contacts/{lifted.id}/restrict")
    _person_asks(public, smtp_sink, "kim@example.org", "unrestrict")
    at_club = _contact(app, club.account_id, "kim@example.org")
    assert at_club.restricted_at is not None and at_club.restricted_by == "account"
