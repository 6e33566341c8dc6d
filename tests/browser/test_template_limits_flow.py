"""A marketer who writes a template that would make far too much text is told which limit, on
the form, and the draft keeps its last good body; in headless Chromium (also 390 px wide)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from campaigns import senders, services
from subscribers import services as subscribers
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_tenant

pytestmark = pytest.mark.browser

GOOD = "<p>Hola {{ contact.first_name }} {{ '★' * 3 }}</p>"
HOSTILE = '<p>Hola {{ contact.first_name }} {{ "x" * 30000000 }}</p>'


def test_saving_a_template_over_a_limit_shows_the_limit_inline(
    live_server: LiveServer, page: Any
) -> None:
    with live_server.app.app_context():
        tenant = make_tenant(email="zoe@shop.example")
        senders.add_sender(tenant.account_id, "news@shop.example", "Tienda", verified=True)
        list_id = subscribers.create_list(tenant.account_id, "Clientes").id
        subscribers.add_contact_to_list(tenant.account_id, list_id, "li@example.cn", name="李小龍")
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Primavera",
            subject="Hola {{ contact.first_name }}",
            from_name="Tienda",
            from_email="news@shop.example",
            html_body=GOOD,
            list_ids=[list_id],
        )
    base = live_server.url
    page.goto(f"{base}/login")
    page.fill("#email", "zoe@shop.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))

    page.goto(f"{base}/campaigns/{campaign.id}/edit")
    page.fill("#html_body", HOSTILE)
    page.click('button:has-text("Save draft")')
    error = page.get_by_text("The template makes a string of 30,000,000 characters")
    error.wait_for()
    assert "the limit is 100,000." in error.inner_text()
    assert page.locator("#html_body").input_value() == HOSTILE  # kept to be corrected
    screenshot(page, "template-limit-refused")
    page.set_viewport_size({"width": 390, "height": 844})
    assert error.is_visible()
    screenshot(page, "template-limit-refused-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.fill("#html_body", GOOD)
    page.click('button:has-text("Save draft")')
    page.wait_for_selector("text=Campaign saved.")
    with live_server.app.app_context():
        assert services.get_campaign(tenant.account_id, campaign.id).html_body == GOOD
