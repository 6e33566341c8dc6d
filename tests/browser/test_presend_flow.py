"""Before sending, in headless Chromium: the pre-send checks on the campaign page (an error
blocks sending), previews at desktop and mobile width, in dark mode and as plain text, as a
contact found by search, a test send to two addresses, and an A/B test set up (also 390 px)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts import services as accounts
from campaigns import senders, services
from core import db as core_db
from subscribers import services as subscribers
from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.factories import make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

BODY = (
    "<html><body><h1>Hola {{ contact.first_name or 'amigo' }}</h1>"
    "<p>Our spring letter: the garden, the shop and the café, with the dates of the open "
    "days in April and May and everything that changed this season.</p>"
    '<img src="https://shop.example/garden.png" width="300">'
    '<p><a href="#">Read more</a></p></body></html>'
)


def _setup(server: LiveServer) -> int:
    with server.app.app_context():
        tenant = make_tenant(email="ann@shop.example")
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
        list_id = subscribers.create_list(tenant.account_id, "Clients").id
        for address, name in [
            ("zoe@example.org", "Zoë Ñúñez"),
            ("li@example.cn", "李小龍"),
            ("ada@example.org", ""),
        ]:
            subscribers.add_contact_to_list(tenant.account_id, list_id, address, name=name)
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Primavera",
            subject="Spring news",
            from_name="Shop",
            from_email="news@shop.example",
            html_body=BODY,
            list_ids=[list_id],
        )
        core_db.session.remove()
        return campaign.id


def test_checks_previews_test_send_and_ab_setup(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    base = live_server.url
    campaign_id = _setup(live_server)
    log_in(page, base, "ann@shop.example")
    page.goto(f"{base}/campaigns/{campaign_id}")

    # The checks: the "#" link blocks sending, the missing alt text is a warning; each says why.
    checks = page.locator("#checks")
    assert "1 problem must be fixed" in checks.locator("#checks-summary").inner_text()
    links = checks.locator("[data-check=links]")
    assert links.get_attribute("data-level") == "error"
    assert "Blocks sending" in links.inner_text() and "goes nowhere" in links.inner_text()
    assert "Why:" in links.inner_text()
    assert checks.locator("[data-check=alt]").get_attribute("data-level") == "warning"
    desktop = page.frame_locator("iframe#preview[data-view=desktop]")
    assert "Hola Sample" in desktop.locator("h1").inner_text()  # loaded before the picture
    screenshot(page, "presend-checks")
    page.click("#send-now")
    page.wait_for_selector("#send-problems")
    assert "broken links" in page.locator("#send-problems").inner_text()
    assert page.locator("#confirm-send-button").count() == 0
    # Scheduling goes through the service, which refuses too.
    page.goto(f"{base}/campaigns/{campaign_id}")
    page.fill("#send_at", "2030-01-07T10:00")
    page.click("#schedule button[type=submit]")
    page.wait_for_selector(".flash-error")
    assert "Before scheduling, broken links" in page.locator(".flash-error").first.inner_text()
    assert "draft" in page.locator("#campaign-status").inner_text()
    assert smtp_sink.messages == []

    # Previews: mobile width, dark mode, plain text, as a contact found by search.
    page.goto(f"{base}/campaigns/{campaign_id}")
    page.click("#preview-views >> [data-view=mobile]")
    page.wait_for_selector("iframe#preview[data-view=mobile]")
    box = page.locator("iframe#preview").bounding_box()
    assert box is not None and 370 <= box["width"] <= 380
    frame = page.frame_locator("iframe#preview")
    assert "Hola Sample" in frame.locator("h1").inner_text()
    screenshot(page, "presend-preview-mobile")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "presend-preview-mobile-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("#preview-views >> [data-view=dark]")
    page.wait_for_selector("iframe#preview[data-view=dark]")
    page.wait_for_selector("#dark-note")
    filtered = frame.locator("html").evaluate("e => getComputedStyle(e).filter")
    assert "invert" in filtered
    screenshot(page, "presend-preview-dark")
    page.fill("#preview_q", "zoë")
    page.click("#preview-find")
    page.wait_for_selector("#preview_contact >> text=Zoë Ñúñez <zoe@example.org>", state="attached")
    assert page.locator("#preview_contact option").count() == 2  # the sample and Zoë
    with page.expect_navigation():
        page.select_option("#preview_contact", label="Zoë Ñúñez <zoe@example.org>")
    assert "Hola Zoë" in frame.locator("h1").inner_text()
    page.click("#preview-views >> [data-view=text]")
    page.wait_for_selector("#preview-text")
    text = page.locator("#preview-text").inner_text()
    assert "Hola Zoë" in text and "Unsubscribe:" in text
    screenshot(page, "presend-preview-text")

    # A test send to two addresses, one per line.
    page.fill("#addresses", "ann@shop.example\nzoë@bücher.example")
    page.click("#test-send button[type=submit]")
    page.wait_for_selector("text=Test sent to 2 addresses.")
    received = smtp_sink.wait_for(2)
    assert {str(r.message["Subject"]) for r in received} == {"[Test] Spring news"}
    assert all(r.message["X-Envoy-Test"] == "yes" for r in received)
    screenshot(page, "presend-test-sent")

    # An A/B test: a wrong share is refused inline, then saved.
    page.click("#ab-test summary")
    page.fill("#subject_1", "Spring news: 20 % off in the garden shop")
    page.fill("#from_name_1", "Ana from Shop")
    page.fill("#test_percent", "70")
    page.click("#ab-form button[type=submit]")
    page.wait_for_selector("#ab-form .error")
    assert "between 10 and 50" in page.locator("#ab-form").inner_text()
    assert page.input_value("#subject_1") == "Spring news: 20 % off in the garden shop"
    page.fill("#test_percent", "30")
    page.select_option("#auto_send", "no")
    page.click("#ab-form button[type=submit]")
    page.wait_for_selector("text=A/B test saved")
    summary = page.locator("#ab-summary").inner_text()
    assert "30 %" in summary and "once you confirm" in summary
    screenshot(page, "presend-ab-setup")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "presend-ab-setup-390")
