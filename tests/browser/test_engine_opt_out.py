"""In Chromium: leave the engine on Settings > Advanced, see the new state explained, join
again; and the operator's view of the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from accounts import services as accounts
from accounts.models import User
from core import db as core_db
from core.db import utcnow
from privacy import engine_gate
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, log_in, reload_until, screenshot
from tests.engine.sending import message_for
from tests.factories import make_list_with_contacts, make_tenant

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> None:
    """Two accounts' sends and opens in the engine, and a platform operator."""
    now = utcnow()
    with live_server.app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        other = make_tenant("owner@other.example", "Other")
        for tenant, domain in ((shop, "inbox.example"), (other, "mail.example")):
            people = [f"person{n}@{domain}" for n in range(8)]
            make_list_with_contacts(tenant, people)
            for day in range(10):
                at: datetime = now - timedelta(days=day)
                for n, person in enumerate(people):
                    outcome = (
                        "bounced" if n == 0 else "deferred" if (n + day) % 5 == 0 else "delivered"
                    )
                    engine_gate.record_delivery_outcome(
                        tenant.account_id, None, person, outcome, at
                    )
        accounts.update_privacy_settings(shop.account_id, True, "truncate", 180)
        for n in range(1, 8):  # human opens, most in the evening
            message_id = message_for(shop, f"person{n}@inbox.example")
            for hour in (18 + n % 3, 19, 7 + n):
                engine_gate.record_engagement(
                    shop.account_id, message_id, "open", now.replace(hour=hour), False
                )
        operator = make_tenant("ops@platform.example", "Platform")
        user = core_db.session.get(User, operator.user_id)
        assert user is not None
        user.is_platform_admin = True
        core_db.session.commit()
        core_db.session.remove()


def test_leave_and_rejoin_the_engine_on_the_advanced_tab(
    live_server: LiveServer, page: Any
) -> None:
    base = live_server.url
    _seed(live_server)
    log_in(page, base, "owner@shop.example")
    page.click("nav >> text=Settings")
    page.click(".tabs >> text=Advanced")
    assert page.locator("#engine-status").inner_text() == "Taking part"
    assert "contribution records" in page.locator("#engine-holdings").inner_text()
    screenshot(page, "engine-advanced-taking-part")
    assert_no_axe_violations(page, "engine-advanced-taking-part")

    page.uncheck("#advanced-engine_participation")
    page.click("#engine button:has-text('Save')")
    page.wait_for_selector("text=You have left the Delivery Optimization Engine")
    assert page.locator("#engine-status").inner_text() == "Opted out"
    screenshot(page, "engine-advanced-just-left")
    holdings = page.locator("#engine-holdings")
    reload_until(
        page, lambda: "holds nothing from your contacts" in holdings.inner_text(), "the removal"
    )
    assert "has been removed" in page.locator("#engine-holdings").inner_text()
    assert "If you take part again, the engine starts from nothing" in page.content()
    screenshot(page, "engine-advanced-opted-out")
    assert_no_axe_violations(page, "engine-advanced-opted-out")

    page.check("#advanced-engine_participation")
    page.click("#engine button:has-text('Save')")
    page.wait_for_selector("text=It starts from nothing for your contacts")
    assert page.locator("#engine-status").inner_text() == "Taking part"
    assert "holds nothing from your contacts yet" in page.locator("#engine-holdings").inner_text()
    screenshot(page, "engine-advanced-rejoined")


def test_the_operator_sees_the_engine_in_aggregate(live_server: LiveServer, page: Any) -> None:
    base = live_server.url
    _seed(live_server)
    log_in(page, base, "ops@platform.example")
    page.click(".account > summary")  # operator pages sit in the account menu
    page.click("nav.operator >> text=Engine")
    page.wait_for_selector("h1:has-text('Delivery Optimization Engine')")
    assert page.locator("svg.chart").count() == 2
    assert "inbox.example" in page.locator("#engine-domains").inner_text()
    assert "person1@" not in page.content()
    screenshot(page, "engine-operator")
    assert_no_axe_violations(page, "engine-operator")
