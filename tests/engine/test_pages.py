"""Settings > Advanced (the opt-out) and the operator page, over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from flask import Flask

from accounts.models import User
from core import db as core_db
from engine.services import engine_hash
from privacy import engine_gate
from tests.conftest import drain
from tests.factories import login, make_list_with_contacts, make_tenant

NOW = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)


def test_the_advanced_tab_leaves_and_rejoins_with_an_explanation(app: Flask) -> None:
    client = app.test_client()
    with app.app_context():
        tenant = make_tenant()
        make_list_with_contacts(tenant, ["ann@mail.example"])
        engine_gate.record_delivery_outcome(
            tenant.account_id, None, "ann@mail.example", "delivered", NOW
        )
        core_db.session.commit()
        core_db.session.remove()
    login(client, tenant.email)
    page = client.get("/settings?tab=advanced").get_data(as_text=True)
    assert "Taking part" in page and "holds 1 contribution record" in page

    # An unchecked box is absent from the form; the empty field stands for the CSRF token a
    # browser always sends (CSRF is off in these tests, and an empty form would keep the data).
    response = client.post(
        "/settings?tab=advanced", data={"advanced-engine_participation": ""}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "You have left the Delivery Optimization Engine" in page
    assert "Opted out" in page and "1 record left" in page
    drain(app)  # the removal job
    page = client.get("/settings?tab=advanced").get_data(as_text=True)
    assert "The engine holds nothing from your contacts" in page

    response = client.post(
        "/settings?tab=advanced",
        data={"advanced-engine_participation": "y"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "It starts from nothing for your contacts" in page and "Taking part" in page


def test_operator_page_shows_domains_and_days_never_addresses(app: Flask) -> None:
    client = app.test_client()
    addresses = [f"person{n}@big.example" for n in range(6)] + ["solo@tiny.example"]
    with time_machine.travel(NOW, tick=False), app.app_context():
        tenant = make_tenant()
        make_list_with_contacts(tenant, addresses)
        for address in addresses:
            engine_gate.record_delivery_outcome(tenant.account_id, None, address, "delivered", NOW)
        engine_gate.record_delivery_outcome(
            tenant.account_id, None, "person0@big.example", "bounced", NOW
        )
        operator = make_tenant("ops@platform.example", "Platform")
        user = core_db.session.get(User, operator.user_id)
        assert user is not None
        user.is_platform_admin = True
        core_db.session.commit()
        hashes = [engine_hash(address) for address in addresses]
        core_db.session.remove()

    login(client, tenant.email)
    assert client.get("/operator/engine").status_code == 404  # not for account members
    client.post("/logout", data={})
    login(client, "ops@platform.example")
    response = client.get("/operator/engine")  # NOW is within its last 30 days
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<svg" in page and "Delivery outcomes per day" in page
    assert "<code>big.example</code>" in page
    assert "tiny.example" not in page  # one address: only counted among smaller domains
    assert "1 smaller domain" in page
    assert re.search(r'data-stat="addresses">7<', page)
    assert re.search(r'data-stat="suppressed">1<', page)
    for address, hashed in zip(addresses, hashes, strict=True):
        assert address not in page and hashed not in page
    assert 'class="operator"' in page or "operator" in page


def test_operator_page_when_the_engine_is_empty(app: Flask, db: Any) -> None:
    client = app.test_client()
    operator = make_tenant("ops@platform.example", "Platform")
    user = db.get(User, operator.user_id)
    user.is_platform_admin = True
    db.commit()
    login(client, operator.email)
    page = client.get("/operator/engine").get_data(as_text=True)
    assert "The engine holds nothing yet" in page
