"""In Chromium: an owner adds a webhook endpoint under Settings > Webhooks (a loopback URL is
refused inline until the operator allows private targets), sends a test event to a local
receiver, sees it succeed in the delivery log, sees a failure there and retries it; the pages
work at 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import LiveServer, log_in, reload_until, screenshot
from tests.factories import make_tenant
from tests.webhooks.receiver import Receiver, verifies

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


def _wait_for_row(page: Any, status: str, count: int = 1) -> None:
    """Reload the endpoint page until the log shows ``count`` rows of ``status``."""
    rows = page.locator(f"#delivery-log tr[data-status='{status}']")
    reload_until(page, lambda: rows.count() >= count, f"{count} {status} deliveries in the log")


def test_owner_adds_an_endpoint_sends_a_test_event_and_retries_a_failure(
    live_server: LiveServer, page: Any, phone: Any, receiver: Receiver
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        make_tenant("owner@cafe.example", "Café Zoë")
    log_in(page, base, "owner@cafe.example")

    page.goto(f"{base}/settings")
    page.click("nav.tabs >> text=Webhooks")
    page.wait_for_url(f"{base}/settings/webhooks")
    assert "No webhook endpoints yet" in page.inner_text("main")
    screenshot(page, "webhooks-empty")

    page.click("#new-endpoint")
    page.fill("#url", receiver.url)
    page.fill("#description", "Zoë's CRM — sync")
    page.check("input[value='contact.unsubscribed']")
    page.click("button:has-text('Add endpoint')")
    # The platform is not a relay into its own network: refused inline, nothing lost.
    error = page.inner_text(".field.has-error")
    assert "loopback" in error and "127.0.0.1" in error
    assert page.input_value("#url") == receiver.url
    assert page.input_value("#description") == "Zoë's CRM — sync"
    screenshot(page, "webhooks-refused-loopback")

    live_server.app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = True  # the operator allows it
    page.click("button:has-text('Add endpoint')")
    page.wait_for_url(f"{base}/settings/webhooks/*")
    assert "Endpoint added." in page.inner_text(".flash")
    page.click("#signing-secret summary")
    secret = page.inner_text("#secret-value").strip()
    assert secret.startswith("whsec_")
    assert "No deliveries yet" in page.inner_text("main")

    page.click("#send-test")
    assert "Test event queued." in page.inner_text(".flash")
    _wait_for_row(page, "succeeded")
    log = page.inner_text("#delivery-log")
    assert "webhook.test" in log and "200" in log
    [request] = receiver.requests
    assert verifies(secret, request)
    assert request.json["type"] == "webhook.test"
    screenshot(page, "webhooks-delivery-log")

    receiver.default = 500
    page.click("#send-test")
    # The click posts the form: its answer must be shown before the page is reloaded (a
    # reload during that navigation fails with "Not attached to an active page").
    page.wait_for_selector(".flash:has-text('Test event queued.')")
    _wait_for_row(page, "pending")
    failed = page.locator("#delivery-log tr[data-status='pending']")
    assert "500" in failed.inner_text()
    screenshot(page, "webhooks-failure")
    receiver.default = 200
    failed.get_by_role("button", name="Retry").click()
    assert "Delivery queued again." in page.inner_text(".flash")
    _wait_for_row(page, "succeeded", count=2)
    assert len(receiver.requests) == 3

    page.goto(f"{base}/settings/webhooks")
    assert receiver.url in page.inner_text("#endpoints")
    screenshot(page, "webhooks-list")

    log_in(phone, base, "owner@cafe.example")
    phone.goto(f"{base}/settings/webhooks")
    phone.get_by_role("link", name=f"Open {receiver.url}").click()
    phone.wait_for_selector("#delivery-log")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    screenshot(phone, "webhooks-endpoint-390")
