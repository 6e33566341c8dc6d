"""In Chromium: an owner sets up single sign-on under Settings, then a colleague logs in
through the organisation's provider (a local OpenID Connect provider the test starts) and
lands in the account as a member; on a phone-sized screen as well."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_tenant
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.browser

OWNER = "owner@corp.example"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    started = OidcProvider().start()
    yield started
    started.stop()


def test_owner_sets_up_sso_and_a_colleague_logs_in_through_it(
    live_server: LiveServer, browser: Any, page: Any, provider: OidcProvider
) -> None:
    base = live_server.url
    live_server.app.config["SSO_ALLOW_LOCAL_ISSUERS"] = True
    with live_server.app.app_context():
        make_tenant(OWNER, "Corp Ltd")
    page.goto(f"{base}/login")
    page.fill("#email", OWNER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")

    page.goto(f"{base}/settings")
    page.click("nav.tabs >> text=Single sign-on")
    page.wait_for_url(f"{base}/settings/sso")
    assert "/login/sso/callback" in page.inner_text("#sso-callback")
    page.fill("#issuer", provider.url)
    page.fill("#client_id", provider.client_id)
    page.fill("#client_secret", provider.client_secret)
    page.fill("#email_domain", "no-dot")
    page.click("text=Save single sign-on")
    assert "Enter a domain such as shop.example." in page.inner_text("main")  # inline error
    page.fill("#client_secret", provider.client_secret)
    page.fill("#email_domain", "corp.example")
    page.click("text=Save single sign-on")
    page.wait_for_url(f"{base}/settings/sso")
    assert "Single sign-on saved." in page.inner_text("body")
    assert provider.client_secret not in page.content()
    screenshot(page, "sso-settings")

    context = browser.new_context(viewport={"width": 390, "height": 844})
    colleague = context.new_page()
    colleague.set_default_timeout(15_000)
    colleague.goto(f"{base}/login")
    colleague.click("text=Log in with single sign-on")
    colleague.fill("#email", "ana@corp.example")
    screenshot(colleague, "sso-login-390")
    colleague.click("button[type=submit]")
    colleague.wait_for_url(f"{provider.url}/authorize**")
    colleague.click("text=Continue as ana@corp.example")
    colleague.wait_for_url(f"{base}/dashboard")
    assert colleague.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(colleague, "sso-logged-in-390")
    colleague.goto(f"{base}/settings")  # a member: no settings
    assert "Not allowed for your role" in colleague.inner_text("body")
    context.close()

    page.goto(f"{base}/team")
    assert "ana@corp.example" in page.inner_text("main")
