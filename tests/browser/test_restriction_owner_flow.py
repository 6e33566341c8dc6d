"""In Chromium: a member cannot lift a restriction the person asked for, and sees why."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import db as core_db
from subscribers.models import Contact
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_privacy_flows import _link
from tests.factories import PASSWORD, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser


def test_a_member_cannot_lift_the_persons_restriction(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    base = live_server.url
    with app.app_context():
        tenant = make_tenant("zoe@bakery.example", "Bakery")
        make_list_with_contacts(tenant, ["rae@example.org"])
        from accounts import services as accounts

        accounts.add_member(tenant.account_id, "owner", "max@bakery.example", "Max", "member")
    # The person restricts processing through the public form.
    page.goto(f"{base}/privacy/request")
    page.fill("#email", "rae@example.org")
    page.check("input[name=kind][value=restrict]")
    page.click("button[type=submit]")
    page.wait_for_selector("#check-inbox")
    page.goto(_link(smtp_sink, "rae@example.org", "/privacy/confirm/"))
    page.click("#confirm-request")
    page.wait_for_selector("#outcome")
    with app.app_context():
        contact_id = core_db.session.scalar(
            select(Contact.id).where(Contact.email == "rae@example.org")
        )
        core_db.session.remove()

    # The member sets a password and opens the contact's privacy page.
    page.goto(_link(smtp_sink, "max@bakery.example", "/password/reset/"))
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your password is set")
    page.goto(f"{base}/login")
    page.fill("#email", "max@bakery.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/privacy/contacts/{contact_id}")
    lift = page.locator("#lift-restriction")
    assert lift.is_visible() and lift.is_disabled()
    reason = page.locator("#restriction-owner")
    assert "This person asked for the restriction" in reason.inner_text()
    screenshot(page, "privacy-restriction-by-person")
    assert_no_axe_violations(page, "privacy-restriction-by-person")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.locator("#restriction-owner").is_visible()
    screenshot(page, "privacy-restriction-by-person-390")
    page.goto(f"{base}/contacts/{contact_id}")
    assert "at the person\u2019s request" in page.locator("main").inner_text()
    with app.app_context():
        contact = core_db.session.get(Contact, contact_id)
        assert contact is not None and contact.restricted_at is not None
        core_db.session.remove()
