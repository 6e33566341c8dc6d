"""In Chromium: a recipient unsubscribes from a received email, sees who sent it and which list
they leave, undoes it within the window; and a second person comes back too late."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from campaigns import previews
from campaigns import services as campaigns
from core import db as core_db
from core.db import utcnow
from subscribers import services as subscribers
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import make_tenant
from tests.mail_parsing import urls_of
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

PEOPLE = ["zoë.ñúñez@example.org", "ольга@example.ru"]


def _send(live_server: LiveServer, smtp_sink: SMTPSink) -> dict[str, Any]:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@baeckerei.example", "Bäckerei Ñúñez")
        weekly = subscribers.create_list(tenant.account_id, "Wochenangebote")
        for address in PEOPLE:
            subscribers.add_contact_to_list(tenant.account_id, weekly.id, address)
        campaign = campaigns.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Winter",
            subject="Winterbrot",
            from_name="Zoë from the bakery",
            from_email="zoe@baeckerei.example",
            html_body='<html><body><p>Frisch!</p><a href="https://baeckerei.example/">Shop</a>'
            "</body></html>",
            list_ids=[weekly.id],
        )
        campaigns.start(tenant.account_id, campaign.id)
        core_db.session.remove()
    received = smtp_sink.wait_for(len(PEOPLE), timeout=20)
    return {r.recipients[0]: urls_of(r.message) for r in received}


def test_unsubscribe_then_undo_and_too_late(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    mail = _send(live_server, smtp_sink)
    page.goto(mail[PEOPLE[0]].unsubscribe_body)
    heading = page.locator("h1").inner_text()
    assert heading == "Unsubscribe from Bäckerei Ñúñez?"
    assert "Zoë from the bakery <zoe@baeckerei.example>" in page.content().replace(
        "&lt;", "<"
    ).replace("&gt;", ">")
    assert "Wochenangebote" in page.locator(".unsubscribe").inner_text()
    assert page.locator("#preferences").is_visible() and page.locator("#data-request").is_visible()
    screenshot(page, "unsubscribe-ask")
    page.click("#unsubscribe")
    page.wait_for_selector("#unsubscribe-done")
    assert "You can undo this for 15 minutes." in page.content()
    screenshot(page, "unsubscribe-done")
    page.click("#undo")
    page.wait_for_selector("#unsubscribe-undone")
    assert page.locator("h1").inner_text() == "You are subscribed again"
    screenshot(page, "unsubscribe-undone")

    # Ольга, on a phone, unsubscribes and comes back to the page after the window.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(mail[PEOPLE[1]].unsubscribe_body)
    screenshot(page, "unsubscribe-ask-390")
    page.click("#unsubscribe")
    page.wait_for_selector("#undo")
    screenshot(page, "unsubscribe-done-390")
    with time_machine.travel(utcnow() + timedelta(minutes=16), tick=True):
        page.click("#undo")
        page.wait_for_selector("#unsubscribe-too-late")
    assert page.locator("#preferences").is_visible()
    screenshot(page, "unsubscribe-too-late-390")
    page.click("#preferences")
    page.wait_for_selector("text=Your email preferences")
    assert not page.locator("input[name=list_id]").first.is_checked()
    screenshot(page, "unsubscribe-preferences-390")


def test_a_marketer_checks_the_footer_of_a_test_message(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@baeckerei.example", "Bäckerei Ñúñez")
        weekly = subscribers.create_list(tenant.account_id, "Wochenangebote")
        campaign = campaigns.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Winter",
            subject="Winterbrot",
            from_name="Zoë from the bakery",
            from_email="zoe@baeckerei.example",
            html_body="<html><body><p>Frisch!</p></body></html>",
            list_ids=[weekly.id],
        )
        previews.send_test(tenant.account_id, campaign.id, ["marketer@baeckerei.example"])
        core_db.session.remove()
    (received,) = smtp_sink.wait_for(1, timeout=20)
    assert str(received.message["Subject"]).startswith("[Test] ")
    urls = urls_of(received.message)
    page.goto(urls.unsubscribe_body)
    assert page.locator("#test-notice").is_visible()
    screenshot(page, "unsubscribe-test-message")
    page.click("#unsubscribe")
    page.wait_for_selector("#unsubscribe-test-done")
    screenshot(page, "unsubscribe-test-message-pressed")
    page.click("#preferences")
    page.wait_for_selector("#test-notice")
    screenshot(page, "preferences-test-message")
