"""A marketer signs up, creates a list, adds a contact, writes and sends a campaign, in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, reload_until, screenshot
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser


def test_sign_up_to_sent_campaign(live_server: LiveServer, page: Any, smtp_sink: SMTPSink) -> None:
    base = live_server.url
    page.goto(f"{base}/signup")
    page.fill("#account_name", "Bakery")
    page.fill("#name", "Bea")
    page.fill("#email", "bea@bakery.example")
    page.fill("#password", "short")
    page.click("button[type=submit]")
    page.locator(".error").first.wait_for()  # inline error, typed values kept
    assert page.input_value("#email") == "bea@bakery.example"
    # Minors: the age confirmation is required, with its own inline error.
    assert page.locator(".has-error #of_age").count() == 1
    assert "Envoy is not for minors" in page.content()
    screenshot(page, "signup-error")
    assert_no_axe_violations(page, "signup-error")
    page.fill("#password", "a long enough password")
    page.check("#of_age")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/lists")
    assert "No lists yet" in page.content()
    screenshot(page, "lists-empty")
    assert_no_axe_violations(page, "lists-empty")

    page.goto(f"{base}/settings?tab=general")
    page.fill("#general-postal_address", "5 Flour Lane, Breadville")
    page.click("form.card button:has-text('Save')")
    page.wait_for_selector("text=Settings saved.")

    page.goto(f"{base}/lists")
    page.fill("#name", "Regulars")
    page.click("button:has-text('Create list')")
    page.wait_for_selector("h1:has-text('Regulars')")
    page.fill("#email", "not an address")
    page.click("button:has-text('Add contact')")
    page.locator(".error").first.wait_for()  # (visible: waits for the answer to the post)
    page.fill("#email", "carl@customer.example")
    page.fill("#name", "Carl")
    page.click("button:has-text('Add contact')")
    page.wait_for_selector("text=carl@customer.example is subscribed.")
    screenshot(page, "list-with-contact")
    assert_no_axe_violations(page, "list-with-contact")

    page.click("nav >> text=Campaigns")
    page.click("text=New campaign")
    page.fill("#name", "Fresh bread")
    page.fill("#subject", "Fresh bread today")
    page.fill("#from_email", "hello@bakery.example")
    page.select_option("#list_ids", label="Regulars")
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=Campaign saved.")
    page.click("#send-now")
    page.click("#confirm-send-button")
    page.wait_for_selector("text=Sending started to 1 recipient.")
    smtp_sink.wait_for(1)
    status = page.locator("#campaign-status")
    reload_until(page, lambda: status.inner_text() == "sent", "the campaign's end")
    assert page.locator("#campaign-status").inner_text() == "sent"
    assert page.locator("[data-stat=sent]").inner_text() == "1"
    screenshot(page, "campaign-sent")
    assert_no_axe_violations(page, "campaign-sent")
    received = smtp_sink.messages[0]
    assert received.recipients == ["carl@customer.example"]
    assert received.message["Subject"] == "Fresh bread today"
