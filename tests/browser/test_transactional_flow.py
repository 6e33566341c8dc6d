"""In Chromium: the Transactional page lists an account's transactional messages with their
status and reason (never their content), with an empty state first, on a laptop and a phone."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.transactional import send_transactional
from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.conftest import drain
from tests.factories import make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

OWNER = "zoë.owner@ejemplo.es"


def _send(account_id: int, to: str) -> int:
    return send_transactional(
        account_id,
        to,
        from_email="pedidos@ejemplo.es",
        subject="Recibo {{ data.order }}",
        html="<p>Secret content {{ data.order }}</p>",
        data={"order": "Ñ-42"},
    )


def test_the_transactional_page_lists_messages_with_their_status(
    live_server: LiveServer, page: Any, phone: Any, smtp_sink: SMTPSink
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant(OWNER, "Tienda Ñandú")
    log_in(page, base, OWNER)
    page.get_by_role("link", name="Campaigns").first.click()
    page.get_by_role("link", name="Transactional messages").click()
    page.wait_for_url(f"{base}/transactional")
    assert "No transactional messages yet" in page.inner_text("main")
    screenshot(page, "transactional-empty")

    smtp_sink.reply_for("nadie@ejemplo.es", "550 5.1.1 no such user")
    with live_server.app.app_context():
        sent = _send(tenant.account_id, "josé@ejemplo.es")
        refused = _send(tenant.account_id, "nadie@ejemplo.es")
    drain(live_server.app)
    page.reload()
    table = page.inner_text("#transactional-table")
    assert "Secret content" not in page.content()  # never the body
    row = page.inner_text(f"#transactional-{sent}")
    assert "josé@ejemplo.es" in row and "sent" in row
    row = page.inner_text(f"#transactional-{refused}")
    assert "failed" in row and "Refused by the receiving server (550 5.1.1)" in row
    assert table.index("nadie@") < table.index("josé@")  # newest first
    screenshot(page, "transactional-list")

    log_in(phone, base, OWNER)
    phone.goto(f"{base}/transactional")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    screenshot(phone, "transactional-phone-390")
