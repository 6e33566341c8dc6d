"""In Chromium: an owner creates an API key on Settings > API keys, sees it once, a program
uses it over HTTP, the owner revokes it and the program is refused; on a phone the page fits.
The API's reference page loads everything from our own origin and shows the operations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.factories import make_tenant

pytestmark = pytest.mark.browser

EMAIL = "owner@büro.example"


def test_a_key_is_created_shown_once_used_and_revoked(
    live_server: LiveServer, page: Any, phone: Any
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        make_tenant(EMAIL, "Büro Ñ")
    log_in(page, base, EMAIL)
    page.goto(f"{base}/settings")
    page.click("nav.tabs >> text=API keys")
    page.wait_for_url(f"{base}/settings/api-keys")
    assert "No API keys yet" in page.inner_text("main")
    page.click("#key-form button[type=submit]")  # no name: an inline error, nothing lost
    assert "Name the key" in page.inner_text("#key-form")
    page.fill("#name", "Shop sign-ups")
    page.check("input[name=scopes][value='contacts:manage']")
    page.click("#key-form button[type=submit]")
    secret = page.inner_text("#new-key-secret").strip()
    assert secret.startswith("envoy_")
    assert "shown only this once" in page.inner_text("#new-key")
    screenshot(page, "api-key-created")

    answer = requests.get(
        f"{base}/api/v1/contacts", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert answer.status_code == 200 and answer.json() == {"items": [], "next_cursor": None}
    made = requests.post(
        f"{base}/api/v1/contacts",
        json={"email": "jürgen@example.de"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert made.status_code == 201
    no_scope = requests.get(
        f"{base}/api/v1/campaigns", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert no_scope.status_code == 403

    page.goto(f"{base}/settings/api-keys")  # shown once: never again
    assert secret not in page.content()
    row = page.locator("#api-keys tbody tr", has_text="Shop sign-ups")
    assert "last used" in row.inner_text()
    phone_page = phone
    log_in(phone_page, base, EMAIL)
    phone_page.goto(f"{base}/settings/api-keys")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    screenshot(phone_page, "api-keys-phone")

    row.locator("button", has_text="Revoke").click()
    page.wait_for_url(f"{base}/settings/api-keys")
    assert "no longer works" in page.inner_text("main")
    assert "revoked" in page.locator("#api-keys tbody tr", has_text="Shop sign-ups").inner_text()
    refused = requests.get(
        f"{base}/api/v1/contacts", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
    page.goto(f"{base}/settings/security-log")
    log = page.inner_text("main")
    assert "API key created" in log and "API key revoked" in log


def test_the_reference_page_loads_only_from_our_origin(live_server: LiveServer, page: Any) -> None:
    base = live_server.url
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{base}/api/v1/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 10  # one block per operation
    screenshot(page, "api-reference")
    origins = {urlsplit(url)._replace(path="", query="", fragment="").geturl() for url in requested}
    assert origins == {base}, origins
