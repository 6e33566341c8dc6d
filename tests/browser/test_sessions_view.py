"""In Chromium: a person logged in on a laptop and a phone sees both sessions under "Your
login", ends the phone's, logs out everywhere else, changes the password (a wrong current
password is refused inline), and meets the login throttle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_tenant

pytestmark = pytest.mark.browser

EMAIL = "zoe.nunez@ejemplo.es"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, user_agent=IPHONE)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def _log_in(page: Any, base: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", EMAIL)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")


def test_sessions_view_ends_sessions_and_changes_the_password(
    live_server: LiveServer, page: Any, phone: Any
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        make_tenant(EMAIL, "Zoë Ñúñez SL")
    _log_in(page, base)
    _log_in(phone, base)

    page.click(".account > summary")  # the account menu holds "Your login"
    page.click("text=Your login")
    page.wait_for_url(f"{base}/me/sessions")
    rows = page.locator("#sessions tbody tr")
    assert rows.count() == 2
    assert "this session" in rows.filter(has_text="Automated or headless browser").inner_text()
    assert "this session" not in rows.filter(has_text="Phone or tablet").inner_text()
    assert "127.0.0.0/24" in page.inner_text("#sessions")  # the network, never the address
    screenshot(page, "sessions-two-devices")

    phone.goto(f"{base}/me/sessions")
    screenshot(phone, "sessions-phone-390")

    rows.filter(has_text="Phone or tablet").get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/me/sessions")
    assert "That session is logged out." in page.inner_text(".flash")
    assert rows.count() == 1
    phone.goto(f"{base}/lists")
    assert "/login" in phone.url  # the phone is logged out at once

    _log_in(phone, base)
    page.reload()
    assert rows.count() == 2
    page.get_by_role("button", name="Log out everywhere else").click()
    page.wait_for_url(f"{base}/me/sessions")
    assert "Logged out everywhere else (1 session)." in page.inner_text(".flash")
    assert "This is your only session." in page.inner_text("main")
    screenshot(page, "sessions-only-this-one")
    phone.goto(f"{base}/lists")
    assert "/login" in phone.url

    _log_in(phone, base)
    page.click("nav.tabs >> text=Password")
    page.wait_for_url(f"{base}/me/password")
    page.fill("#current_password", "not my password")
    page.fill("#password", "Ольга's new passphrase")
    page.fill("#confirm", "Ольга's new passphrase")
    page.click("main button[type=submit]")
    assert "That is not your current password." in page.inner_text(".field.has-error")
    screenshot(page, "password-change-refused")
    page.fill("#current_password", PASSWORD)
    page.fill("#password", "Ольга's new passphrase")
    page.fill("#confirm", "Ольга's new passphrase")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/me/sessions")
    assert "Every other session was logged out." in page.inner_text(".flash")
    screenshot(page, "password-changed")
    phone.goto(f"{base}/lists")
    assert "/login" in phone.url


def test_login_throttle_answers_in_the_page(live_server: LiveServer, phone: Any) -> None:
    base = live_server.url
    live_server.app.config.update(LOGIN_LIMITS_PER_ADDRESS="3/minute")
    with live_server.app.app_context():
        make_tenant(EMAIL, "Zoë Ñúñez SL")
    for _ in range(3):
        _log_in(phone, base, "guessing wrong")
        assert "Wrong email or password." in phone.inner_text(".field.has-error")
    _log_in(phone, base, PASSWORD)
    assert "/login" in phone.url
    assert "Too many failed attempts. Try again in 1 minute." in phone.inner_text(
        ".field.has-error"
    )
    screenshot(phone, "login-throttled-390")
