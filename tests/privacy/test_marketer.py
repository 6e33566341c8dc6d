"""Marketers answer for one contact from its page (report, export, restrict, erase), see the
requests concerning their account, and never another account's contacts."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask
from sqlalchemy import select

from core import db as core_db
from subscribers import services as subscribers
from subscribers.models import Contact
from subscribers.suppression import suppression_reason
from tests.factories import login, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink


def _contact_id(app: Flask, email: str) -> int:
    with app.app_context():
        found = core_db.session.scalar(select(Contact.id).where(Contact.email == email))
        assert found is not None
        return int(found)


def test_contact_page_offers_report_export_restrict_and_erase(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, ["pat@example.org"])
    contact_id = _contact_id(app, "pat@example.org")
    login(client, tenant.email)
    detail = client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert f"/privacy/contacts/{contact_id}" in detail
    page = client.get(f"/privacy/contacts/{contact_id}").get_data(as_text=True)
    assert "Access report" in page and "Lists and subscriptions" in page

    exported = client.post(f"/privacy/contacts/{contact_id}/export.json")
    assert json.loads(exported.data)["accounts"][0]["provided"]["contact"]["email"] == (
        "pat@example.org"
    )
    as_csv = client.post(f"/privacy/contacts/{contact_id}/export.csv")
    assert as_csv.mimetype == "text/csv" and "pat@example.org" in as_csv.get_data(as_text=True)

    client.post(f"/privacy/contacts/{contact_id}/restrict")
    with app.app_context():
        contact = core_db.session.get(Contact, contact_id)
        assert contact is not None and contact.restricted_at is not None
    assert "Lift restriction" in client.get(f"/privacy/contacts/{contact_id}").get_data(
        as_text=True
    )

    refused = client.post(f"/privacy/contacts/{contact_id}/erase", follow_redirects=True)
    assert "Tick the box" in refused.get_data(as_text=True)
    done = client.post(
        f"/privacy/contacts/{contact_id}/erase", data={"confirm": "erase"}, follow_redirects=True
    )
    assert "was erased" in done.get_data(as_text=True)
    with app.app_context():
        assert core_db.session.get(Contact, contact_id) is None
        assert suppression_reason(tenant.account_id, "pat@example.org") == "erased"
        other = make_tenant("owner@other.example", "Other")
        assert suppression_reason(other.account_id, "pat@example.org") is None
        import pytest

        from core.errors import ValidationError

        with pytest.raises(ValidationError, match="suppression list"):
            subscribers.add_contact_to_list(tenant.account_id, list_id, "pat@example.org")

    requests_page = client.get("/privacy/requests").get_data(as_text=True)
    for label in ("A portable export", "Restrict processing", "Erase my data"):
        assert label in requests_page
    assert "your team" in requests_page
    assert "pat@example.org" not in requests_page


def test_another_accounts_contact_is_not_found(app: Flask, client: Any) -> None:
    with app.app_context():
        mine = make_tenant()
        theirs = make_tenant("owner@theirs.example", "Theirs")
        make_list_with_contacts(theirs, ["secret@example.org"])
    contact_id = _contact_id(app, "secret@example.org")
    login(client, mine.email)
    assert client.get(f"/privacy/contacts/{contact_id}").status_code == 404
    for action in ("export.json", "restrict"):
        assert client.post(f"/privacy/contacts/{contact_id}/{action}").status_code == 404
    assert (
        client.post(f"/privacy/contacts/{contact_id}/erase", data={"confirm": "erase"}).status_code
        == 404
    )
    with app.app_context():
        assert core_db.session.get(Contact, contact_id) is not None


def test_a_member_cannot_erase_but_an_operator_sees_the_log(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    from accounts import services as accounts
    from accounts.models import User

    with app.app_context():
        tenant = make_tenant()
        make_list_with_contacts(tenant, ["m@example.org"])
        accounts.add_member(tenant.account_id, "owner", "member@shop.example", "M", "member")
    from tests.factories import PASSWORD
    from tests.privacy.helpers import link_in, token_of

    with app.app_context():
        invitation = link_in(smtp_sink, "member@shop.example", "/password/reset/")
        accounts.reset_password(token_of(invitation), PASSWORD)
    contact_id = _contact_id(app, "m@example.org")
    member_client = app.test_client()
    login(member_client, "member@shop.example")
    response = member_client.post(
        f"/privacy/contacts/{contact_id}/erase", data={"confirm": "erase"}
    )
    assert response.status_code == 403  # erasing needs "Manage privacy settings"
    assert member_client.get("/admin/privacy").status_code == 404
    with app.app_context():
        assert core_db.session.get(Contact, contact_id) is not None
        owner = core_db.session.get(User, tenant.user_id)
        assert owner is not None
        owner.is_platform_admin = True
        core_db.session.commit()
    operator = app.test_client()
    login(operator, tenant.email)
    page = operator.get("/admin/privacy").get_data(as_text=True)
    assert "delete-inactive-accounts" in page and "Audit log" in page
    assert not re.search(r"m@example\.org", page)
