"""A marketer composes a campaign with a live preview, sends a test, schedules and unschedules
it, sends it, watches the progress bar, pauses and resumes, in headless Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest

from campaigns import senders
from subscribers import services as subscribers
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

BODY = (
    "<html><body><h1>Hello {{ contact.first_name }}!</h1>"
    '<p>Our spring collection is in. <a href="https://shop.example/spring">See it</a>.</p>'
    "<script>document.body.innerHTML = 'scripts must not run'</script></body></html>"
)


def _counter(page: Any, name: str) -> int:
    return int(page.locator(f"[data-progress={name}]").inner_text())


def test_compose_preview_test_send_schedule_progress_pause_resume(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant(email="ann@shop.example")
        senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
        senders.update_sending_settings(tenant.account_id, max_per_second=4, max_per_domain=0)
        customers = subscribers.create_list(tenant.account_id, "Customers")
        subscribers.add_contact_to_list(
            tenant.account_id, customers.id, "ada@example.org", "Ada Lovelace"
        )
        for n in range(23):
            subscribers.add_contact_to_list(
                tenant.account_id, customers.id, f"c{n:02d}@example.org", f"Customer{n} X"
            )

    page.goto(f"{base}/login")
    page.fill("#email", "ann@shop.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))

    page.click("nav >> text=Campaigns")
    page.click("text=New campaign")
    page.fill("#name", "Spring")
    page.select_option("#list_ids", label="Customers")
    page.fill("#subject", "Spring news for {{ contact.first_name }}")
    page.fill("#from_email", "news@shop.example")
    broken = BODY.replace("{{ contact.first_name }}", "{{ contact.first_name")
    page.fill("#html_body", broken)
    page.click("button:has-text('Save draft')")
    assert "Personalisation error" in page.locator(".error").first.inner_text()
    assert page.input_value("#html_body") == broken  # nothing typed is lost
    screenshot(page, "sending-compose-error")
    assert_no_axe_violations(page, "sending-compose-error")
    page.fill("#html_body", BODY)
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=Campaign saved.")

    # Preview as a chosen contact, in a sandboxed frame where scripts do not run.
    frame = page.frame_locator("#preview")
    assert frame.locator("h1").inner_text() == "Hello Sample!"
    page.select_option("#preview_contact", label="Ada Lovelace <ada@example.org>")
    page.wait_for_url(re.compile(r".*contact_id=\d+"))
    frame = page.frame_locator("#preview")
    assert frame.locator("h1").inner_text() == "Hello Ada!"
    assert "scripts must not run" not in frame.locator("body").inner_text()
    assert page.get_attribute("#preview", "sandbox") == ""
    screenshot(page, "sending-preview")

    # Test send.
    page.fill("#addresses", "ann@shop.example")
    page.click("button:has-text('Send test')")
    page.wait_for_selector("text=Test sent to 1 address.")
    test_message = smtp_sink.wait_for(1)[0]
    assert test_message.recipients == ["ann@shop.example"]
    assert str(test_message.message["Subject"]).startswith("[Test] Spring news for")

    # Schedule, then take it back.
    page.fill("#send_at", "2031-06-01T09:30")
    page.click("button:has-text('Schedule')")
    page.wait_for_selector("#scheduled-at")
    assert "1 Jun 2031, 09:30 UTC" in page.locator("#scheduled-at").inner_text()
    assert page.locator("#campaign-status").inner_text() == "scheduled"
    screenshot(page, "sending-scheduled")
    assert_no_axe_violations(page, "sending-scheduled")
    page.click("button:has-text('Unschedule')")
    page.wait_for_selector("text=Schedule removed")
    assert page.locator("#campaign-status").inner_text() == "draft"

    # Send (4 messages/s for 24 recipients) and watch the bar move without reloading.
    page.click("#send-now")
    page.click("#confirm-send-button")
    page.wait_for_selector("text=Sending started to 24 recipients.")
    page.wait_for_function(
        "Number(document.querySelector('[data-progress=sent]').textContent) >= 4"
    )
    assert page.locator("#campaign-status").inner_text() == "sending"
    screenshot(page, "sending-progress")

    page.click("button:has-text('Pause')")
    page.wait_for_selector("text=Paused.")
    assert page.locator("#campaign-status").inner_text() == "paused"
    paused_at = _counter(page, "sent")
    page.wait_for_timeout(2500)
    page.reload()
    assert _counter(page, "sent") <= paused_at + 4  # at most what was in flight
    held = _counter(page, "sent")
    page.wait_for_timeout(1500)
    page.reload()
    assert _counter(page, "sent") == held  # nothing moves while paused
    assert held < 24
    screenshot(page, "sending-paused")
    assert_no_axe_violations(page, "sending-paused")

    page.click("button:has-text('Resume')")
    page.wait_for_selector("text=Resumed.")
    page.wait_for_function(
        "document.querySelector('#campaign-status').textContent === 'sent'", timeout=30_000
    )
    assert _counter(page, "sent") == 24
    assert page.locator(".progress").get_attribute("aria-valuenow") == "100"
    screenshot(page, "sending-done")
    campaign_messages = [m for m in smtp_sink.messages if m.recipients != ["ann@shop.example"]]
    assert len(campaign_messages) == 24
    assert len({m.recipients[0] for m in campaign_messages}) == 24


def test_sending_settings_page(live_server: LiveServer, page: Any, smtp_sink: SMTPSink) -> None:
    base = live_server.url
    with live_server.app.app_context():
        make_tenant(email="ann@shop.example")
    page.goto(f"{base}/login")
    page.fill("#email", "ann@shop.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))
    page.click("nav >> text=Sending")
    page.fill("form[action$='/sending/senders'] #email", "news@shop.example")
    page.click("button:has-text('Add and send confirmation')")
    page.wait_for_selector("text=awaiting confirmation")
    page.fill("#url", "ftp://nope")
    page.click("button:has-text('Add SMTP server')")
    assert "scheme" in page.locator(".error").first.inner_text()
    page.fill("#url", "smtp://user:secret@smtp.shop.example:587")
    page.fill("#max_per_second", "20")
    page.click("button:has-text('Add SMTP server')")
    page.wait_for_selector("text=SMTP server added.")
    assert "secret" not in page.content()  # the password is never shown
    page.fill("#domain", "shop.example")
    page.click("button:has-text('Generate a DKIM key')")
    page.wait_for_selector("text=envoy._domainkey.shop.example")
    assert "v=DKIM1; k=rsa; p=" in page.content()
    screenshot(page, "sending-settings")
    assert_no_axe_violations(page, "sending-settings")
