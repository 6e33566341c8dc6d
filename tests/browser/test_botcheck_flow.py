"""The public forms' bot check in headless Chromium: the page's Web Worker solves the
platform's own proof-of-work challenge and the real form goes through; without JavaScript the
page says why it cannot be sent, and sending it anyway is refused inline."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from accounts.models import User
from core import botcheck
from core import db as core_db
from tests.browser.conftest import LiveServer, screenshot
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser


def _strict(live_server: LiveServer) -> None:
    # 2^14 hashes on average in the page's worker; the server checks one.
    live_server.app.config.update(BOT_CHALLENGE_DIFFICULTY=14, BOT_CHALLENGE_MIN_SECONDS=1.5)


def test_the_sign_up_form_goes_through_once_the_page_has_solved_its_challenge(
    live_server: LiveServer, page: Any
) -> None:
    _strict(live_server)
    page.goto(f"{live_server.url}/signup")
    page.fill("#account_name", "Bodega Ñúñez")
    page.fill("#name", "Zoë Ñúñez")
    page.fill("#email", "zoe@bodega.example")
    page.fill("#password", "correct horse battery")
    page.check("#of_age")
    # Sent at once: the script holds it until solved and 1.5 s after the page opened.
    page.click("button:has-text('Create account')")
    page.wait_for_url(re.compile(r".*/lists"), timeout=30_000)
    screenshot(page, "botcheck-signup-accepted")
    with live_server.app.app_context():
        user = core_db.session.scalar(select(User).where(User.email == "zoe@bodega.example"))
        assert user is not None
        core_db.session.remove()


def test_the_data_request_form_on_a_phone_with_and_without_javascript(
    live_server: LiveServer, browser: Any, smtp_sink: SMTPSink
) -> None:
    _strict(live_server)
    base = live_server.url
    phone = {"viewport": {"width": 390, "height": 844}}

    no_js = browser.new_context(java_script_enabled=False, **phone)
    try:
        page = no_js.new_page()
        page.goto(f"{base}/privacy/request")
        assert "needs JavaScript" in page.inner_text("form")
        page.fill("#email", "li@example.cn")
        page.check("input[value=access]")
        page.click("button:has-text('Send me the confirmation link')")
        assert page.inner_text("#botcheck-error") == botcheck.MISSING
        assert page.input_value("#email") == "li@example.cn"
        screenshot(page, "botcheck-data-request-without-javascript")
    finally:
        no_js.close()
    assert smtp_sink.to("li@example.cn") == []

    with_js = browser.new_context(**phone)
    try:
        page = with_js.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/privacy/request")
        page.fill("#email", "li@example.cn")
        page.check("input[value=access]")
        page.click("button:has-text('Send me the confirmation link')")
        page.wait_for_selector("text=Check your inbox")
        screenshot(page, "botcheck-data-request-sent-on-a-phone")
    finally:
        with_js.close()
    assert len(smtp_sink.wait_for(1)) == 1 and smtp_sink.to("li@example.cn")
