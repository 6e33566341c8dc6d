"""A marketer whose campaign had bad recipients sees each failed one with its reason, pages
through them and downloads them; a campaign that cannot progress says why, live; on a phone
(390 px) as on a desktop, in headless Chromium."""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import pytest
from sqlalchemy import select

from campaigns import queries, senders, services
from campaigns.models import Campaign
from core.mail import NO_SMTPUTF8
from tests.browser.conftest import LiveServer, screenshot
from tests.campaigns.test_delivery import EVERYONE, REFUSED, international_campaign
from tests.factories import PASSWORD
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser


def _wait_for_status(app: Any, campaign_id: int, status: str, timeout: float = 30) -> None:
    from core import db

    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) == (
                status
            ):
                return
            time.sleep(0.2)
    raise AssertionError(f"campaign {campaign_id} never became {status}")


def test_failed_recipients_and_a_stalled_campaign(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink, monkeypatch: Any
) -> None:
    base = live_server.url
    app = live_server.app
    smtp_sink.smtputf8 = False
    smtp_sink.reply_for(REFUSED.email, "550 5.1.1 no such user", stage="rcpt")
    monkeypatch.setattr(queries, "FAILED_PAGE_SIZE", 4)
    with app.app_context():
        audience = international_campaign(EVERYONE)
        services.start(audience.tenant.account_id, audience.campaign_id)
    _wait_for_status(app, audience.campaign_id, "sent")

    page.goto(f"{base}/login")
    page.fill("#email", audience.tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))
    page.goto(f"{base}/campaigns/{audience.campaign_id}")

    failed = page.locator("#failed")
    assert "Failed recipients (6)" in failed.locator("h2").inner_text()
    rows = page.locator("#failed-table tbody tr")
    assert rows.count() == 4
    first_page = page.locator("#failed-table").inner_text()
    assert page.locator("#stall-reason").is_hidden()
    failed.scroll_into_view_if_needed()
    screenshot(page, "delivery-failed-recipients")

    page.click("text=Next →")
    page.wait_for_url(re.compile(r".*failed_page=2#failed"))
    assert page.locator("#failed-table tbody tr").count() == 2
    both = first_page + page.locator("#failed-table").inner_text()
    for text in (
        "zoë.ñúñez@example.org",
        "The server does not support international addresses (SMTPUTF8)",
        "Refused by the receiving server (550 5.1.1)",
        "ZeroDivisionError",
        "the part before the @ is 250 octets long",
    ):
        assert text in both, text

    with page.expect_download() as download_info:
        page.click("#failed-csv")
    download = download_info.value
    assert download.suggested_filename == f"campaign-{audience.campaign_id}-failed.csv"
    with open(download.path(), encoding="utf-8") as handle:
        rows_csv = list(csv.DictReader(io.StringIO(handle.read())))
    assert len(rows_csv) == 6
    assert {row["reason"] for row in rows_csv} >= {NO_SMTPUTF8}

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/campaigns/{audience.campaign_id}")
    page.locator("#failed").scroll_into_view_if_needed()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width})"
    screenshot(page, "delivery-failed-recipients-390")

    # A campaign whose SMTP server is down: the page says, live, why nothing moves.
    app.config["SEND_STALL_SECONDS"] = 1
    app.config["SEND_MAX_TRANSPORT_ERRORS"] = 50
    with app.app_context():
        senders.save_smtp_server(
            audience.tenant.account_id,
            name="Office relay",
            url="smtp://127.0.0.1:1?starttls=0&timeout=2",
            max_per_second=0,
            max_connections=1,
        )
        again = international_campaign_copy(audience.tenant.account_id, audience.campaign_id)
        services.start(audience.tenant.account_id, again)
    page.goto(f"{base}/campaigns/{again}")
    stall = page.locator("#stall-reason")
    stall.wait_for(state="visible", timeout=20_000)
    text = stall.inner_text()
    assert text.startswith("No progress since ") and " UTC: SMTP transport error: " in text
    assert "cannot connect to 127.0.0.1:1" in text
    screenshot(page, "delivery-stalled-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "delivery-stalled")


def international_campaign_copy(account_id: int, campaign_id: int) -> int:
    """A new draft with the same content and audience."""
    campaign = services.get_campaign(account_id, campaign_id)
    copy = services.save_campaign(
        account_id,
        campaign_id=None,
        name="Spring offers (again)",
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        html_body=campaign.html_body,
        list_ids=services.campaign_list_ids(campaign_id),
    )
    return copy.id
