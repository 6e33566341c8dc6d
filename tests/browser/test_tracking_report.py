"""A campaign with real events (hits over HTTP through the hot path): its report in Chromium."""

from __future__ import annotations

import time
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from accounts import services as accounts
from campaigns import services as campaigns
from core import db as core_db
from core.db import utcnow
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_campaign, make_list_with_contacts, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BODY, BROWSER_UA, event_count

pytestmark = pytest.mark.browser

RECIPIENTS = [
    "ann@example.org",
    "ben@example.org",
    "cat@example.net",
    "dan@example.net",
    "eve@mail.example",
    "fay@mail.example",
]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _hit(url: str, agent: str = BROWSER_UA) -> int:
    opener = urllib.request.build_opener(_NoRedirect)
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, headers={"User-Agent": agent})  # noqa: S310
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_report_with_chart_for_real_events(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant(email="owner@bakery.example", name="Bakery")
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        list_id = make_list_with_contacts(tenant, RECIPIENTS)
        campaign_id = make_campaign(tenant, list_id, html=BODY, subject="Autumn loaves")
        campaigns.start(tenant.account_id, campaign_id)
        core_db.session.remove()
    received = {r.recipients[0]: urls_of(r.message) for r in smtp_sink.wait_for(len(RECIPIENTS))}

    expected = 0
    start = utcnow()
    # Over the following hours: people open and click; Apple's proxy prefetches every image.
    for hour, addresses in enumerate([RECIPIENTS[:4], RECIPIENTS[2:5], RECIPIENTS[:2], []], 1):
        with time_machine.travel(start + timedelta(hours=hour), tick=True):
            for address in RECIPIENTS:
                urls = received[address]
                assert urls.beacon is not None
                if hour == 1:
                    assert _hit(live_server.url + path_of(urls.beacon), "Mozilla/5.0") == 200
                    expected += 1
                if address in addresses:
                    assert _hit(live_server.url + path_of(urls.beacon)) == 200
                    expected += 1
                    if address in RECIPIENTS[1:4]:  # not every reader clicks
                        assert _hit(live_server.url + path_of(urls.clicks[hour % 3])) == 302
                        expected += 1
    deadline = time.monotonic() + 20
    while event_count(app) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert event_count(app) == expected

    base = live_server.url
    page.goto(f"{base}/login")
    page.fill("#email", tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")
    page.click("nav >> text=Reports")
    page.wait_for_selector("#overview")
    screenshot(page, "tracking-reports-overview")
    assert_no_axe_violations(page, "tracking-reports-overview")
    page.click("text=Autumn loaves")
    page.wait_for_selector("#report-chart")
    assert page.locator("#report-chart polyline").count() == 4
    assert page.inner_text("[data-stat=opens]") == "9"
    assert page.inner_text("[data-stat=machine-opens]") == "6"
    assert page.inner_text("[data-stat=clicks]") == "6"
    assert "example.org" in page.inner_text("#domains")
    assert "ua:apple-mpp" in page.inner_text("#machine-reasons")
    screenshot(page, "tracking-campaign-report")
    assert_no_axe_violations(page, "tracking-campaign-report")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    path = download.value.path()
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        assert "summary,opens,9,6" in handle.read()
