"""In Chromium: a person turns on two-factor authentication without scanning (the key is read
from the page, the code computed as an authenticator app would), saves the recovery codes,
logs out and back in with a code (a wrong one is refused inline), on a phone-sized screen; an
owner then requires it for every member."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest

from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_tenant

pytestmark = pytest.mark.browser

EMAIL = "zoe.nunez@ejemplo.es"


def _password(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")


def test_enrolment_then_login_with_a_code(live_server: LiveServer, page: Any, phone: Any) -> None:
    base = live_server.url
    with live_server.app.app_context():
        make_tenant(EMAIL, "Zoë Ñúñez SL")
    _password(page, base)
    page.click(".account > summary")
    page.click("text=Your login")
    page.click("nav.tabs >> text=Two-factor")
    page.wait_for_url(f"{base}/me/two-factor")
    assert "Two-factor authentication is off" in page.inner_text("main")
    page.click("text=Set up two-factor")
    page.wait_for_url(f"{base}/me/two-factor/setup")
    assert page.locator("#totp-qr svg").is_visible()
    secret = page.inner_text("#totp-secret").replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    screenshot(page, "two-factor-enrol")

    page.fill("#code", "000000")
    page.click("main form button:has-text('Turn on two-factor')")
    assert "That code is not right." in page.inner_text(".field.has-error")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main form button:has-text('Turn on two-factor')")
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    assert "Two-factor authentication is on." in page.inner_text(".flash")
    screenshot(page, "two-factor-recovery-codes")
    page.click("text=I have saved them")
    page.wait_for_url(f"{base}/me/two-factor")
    assert "10 unused recovery codes" in page.inner_text("#codes-left")
    screenshot(page, "two-factor-on")

    # On the phone: password, then the code page; a wrong code is refused in the page.
    _password(phone, base)
    phone.wait_for_url(re.compile(r".*/login/code.*"))
    screenshot(phone, "two-factor-login-code-390")
    phone.fill("#code", "123456")
    phone.click("button[type=submit]")
    assert "That code is not right." in phone.inner_text(".field.has-error")
    # The code of the next step (as the app shows it a moment later): the one used to enrol
    # is not accepted twice.
    phone.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{base}/dashboard")
    screenshot(phone, "two-factor-logged-in-390")

    # An owner requires it of every member (she has it, so she may).
    page.goto(f"{base}/settings")
    page.click("nav.tabs >> text=Security")
    page.wait_for_url(f"{base}/settings/security")
    page.check("#require_two_factor")
    page.click("main form button:has-text('Save')")
    assert "now required" in page.inner_text(".flash")
    screenshot(page, "two-factor-required-setting")


def test_a_passkey_stands_in_for_the_code(live_server: LiveServer, page: Any) -> None:
    """Chromium's virtual authenticator (CTAP2, internal, user verified) adds a passkey under
    Your login > Two-factor, then logs in with it instead of a code. WebAuthn refuses IP
    addresses as relying party, so this browser uses http://localhost (still loopback)."""
    from accounts import twofactor

    base = live_server.url.replace("127.0.0.1", "localhost")
    live_server.app.config["BASE_URL"] = base
    with live_server.app.app_context():
        tenant = make_tenant(EMAIL, "Zoë Ñúñez SL")
        secret = twofactor.begin_enrolment(tenant.user_id).secret
        twofactor.confirm_enrolment(tenant.user_id, pyotp.TOTP(secret).now(), None)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    _password(page, base)
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")

    page.goto(f"{base}/me/two-factor")
    assert "No passkey yet." in page.inner_text("#passkeys")
    page.fill("#passkey-name", "Laptop Touch ID")
    page.click("button[data-passkey=register]")
    page.wait_for_selector(".flash-success")
    assert "Passkey “Laptop Touch ID” added." in page.inner_text(".flash")
    assert "Laptop Touch ID" in page.inner_text("#passkeys")
    credentials = cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]}
    )
    assert len(credentials["credentials"]) == 1
    screenshot(page, "two-factor-passkey-added")

    page.click(".account > summary")
    page.click(".account-panel button:has-text('Log out')")
    page.wait_for_url(f"{base}/login")
    _password(page, base)
    page.wait_for_url(re.compile(r".*/login/code.*"))
    screenshot(page, "two-factor-login-passkey-offer")
    page.click("button[data-passkey=login]")
    page.wait_for_url(f"{base}/dashboard")
    page.goto(f"{base}/me/two-factor")
    assert "last used" in page.inner_text("#passkeys")
