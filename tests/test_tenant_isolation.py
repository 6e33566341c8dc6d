"""A member of one account who guesses another account's ids gets 404, in views and services."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from campaigns import services as campaign_services
from core.errors import NotFoundError, ValidationError
from subscribers import services as subscriber_services
from tests.factories import login, make_campaign, make_list_with_contacts, make_tenant


@pytest.fixture
def two_tenants(app: Flask) -> dict[str, Any]:
    with app.app_context():
        alice = make_tenant("alice@a.example", "A Corp")
        bob = make_tenant("bob@b.example", "B Corp")
        list_id = make_list_with_contacts(alice, ["secret@customer.example"])
        contact_id = subscriber_services.add_contact_to_list(
            alice.account_id, list_id, "secret@customer.example"
        ).id
        campaign_id = make_campaign(alice, list_id)
    return {
        "alice": alice,
        "bob": bob,
        "list_id": list_id,
        "contact_id": contact_id,
        "campaign_id": campaign_id,
    }


def test_every_url_of_another_account_answers_404(app: Flask, two_tenants: dict[str, Any]) -> None:
    client = app.test_client()
    login(client, "bob@b.example")
    t = two_tenants
    gets = [
        f"/lists/{t['list_id']}",
        f"/contacts/{t['contact_id']}",
        f"/campaigns/{t['campaign_id']}",
        f"/campaigns/{t['campaign_id']}/edit",
        f"/campaigns/{t['campaign_id']}/send",
    ]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "secret@customer.example" not in response.get_data(as_text=True)
    posts = [
        (f"/lists/{t['list_id']}", {"email": "intruder@b.example"}),
        (f"/campaigns/{t['campaign_id']}/edit", {"name": "x", "html_body": "x"}),
        (f"/campaigns/{t['campaign_id']}/send", {"expected": "1"}),
        (f"/campaigns/{t['campaign_id']}/duplicate", {}),
    ]
    for path, data in posts:
        assert client.post(path, data=data).status_code == 404, path
    # Listing pages show none of Alice's rows.
    for path in ["/lists", "/contacts", "/campaigns", "/dashboard"]:
        assert "secret@customer.example" not in client.get(path).get_data(as_text=True)
        assert "Hello" not in client.get("/campaigns").get_data(as_text=True)


def test_owner_still_sees_own_rows(app: Flask, two_tenants: dict[str, Any]) -> None:
    client = app.test_client()
    login(client, "alice@a.example")
    assert client.get(f"/lists/{two_tenants['list_id']}").status_code == 200
    assert client.get(f"/contacts/{two_tenants['contact_id']}").status_code == 200
    assert client.get(f"/campaigns/{two_tenants['campaign_id']}").status_code == 200


def test_services_scope_by_account(app: Flask, two_tenants: dict[str, Any]) -> None:
    bob = two_tenants["bob"]
    with app.app_context():
        with pytest.raises(NotFoundError):
            subscriber_services.get_list(bob.account_id, two_tenants["list_id"])
        with pytest.raises(NotFoundError):
            subscriber_services.get_contact(bob.account_id, two_tenants["contact_id"])
        with pytest.raises(NotFoundError):
            campaign_services.get_campaign(bob.account_id, two_tenants["campaign_id"])
        with pytest.raises(NotFoundError):
            campaign_services.start(bob.account_id, two_tenants["campaign_id"])
        with pytest.raises(NotFoundError):
            subscriber_services.add_contact_to_list(
                bob.account_id, two_tenants["list_id"], "x@b.example"
            )
        # Bob cannot point his own campaign at Alice's list.
        with pytest.raises(ValidationError):
            campaign_services.save_campaign(
                bob.account_id,
                campaign_id=None,
                name="steal",
                subject="s",
                from_name="",
                from_email="b@b.example",
                html_body="x",
                list_id=two_tenants["list_id"],
            )
        assert not subscriber_services.unsubscribe_contact(
            bob.account_id, two_tenants["contact_id"], None, "x"
        )
