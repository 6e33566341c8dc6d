"""In Chromium: a marketer switches open tracking off for one campaign on the compose form and
sees it on the campaign page; a recipient turns off tracking of their own opens and clicks in
the preference centre (on a phone), stays subscribed, and their opens and clicks record nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from accounts import services as accounts
from campaigns import services as campaigns
from core import db as core_db
from core.db import utcnow
from subscribers import services as subscribers
from subscribers.models import Subscription
from tests.browser.a11y import assert_fits, assert_no_axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.conftest import drain
from tests.factories import PASSWORD, make_campaign, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink
from tracking.models import TrackingEvent

pytestmark = pytest.mark.browser


def test_a_marketer_switches_open_tracking_off_for_one_campaign(
    live_server: LiveServer, page: Any
) -> None:
    base, app = live_server.url, live_server.app
    with app.app_context():
        tenant = make_tenant("owner@shop.example", "Shop")
        subscribers.create_list(tenant.account_id, "News")
    page.goto(f"{base}/login")
    page.fill("#email", "owner@shop.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))
    page.goto(f"{base}/campaigns/new")
    assert page.is_checked("#track_opens") and page.is_checked("#track_clicks")
    page.fill("#name", "Spring without pixel")
    page.fill("#subject", "Spring")
    page.fill("#from_email", "news@shop.example")
    page.uncheck("#track_opens")
    screenshot(page, "compose-tracking-switches")
    assert_no_axe_violations(page, "compose-tracking-switches")
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("#tracking-settings")
    settings = page.locator("#tracking-settings").inner_text()
    assert "opens off" in settings and "clicks on" in settings
    screenshot(page, "campaign-tracking-settings")
    assert_no_axe_violations(page, "campaign-tracking-settings")
    page.click("a:has-text('Edit')")
    assert not page.is_checked("#track_opens") and page.is_checked("#track_clicks")


def _event_count(app: Any) -> int:
    with app.app_context():
        count = core_db.session.scalar(select(func.count()).select_from(TrackingEvent)) or 0
        core_db.session.remove()
        return int(count)


def test_a_recipient_turns_off_tracking_of_their_opens_and_clicks_and_stays_subscribed(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@shop.example", "Shop")
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        news = subscribers.create_list(tenant.account_id, "News")
        subscribers.add_contact_to_list(tenant.account_id, news.id, "zoë@example.org", "Zoë")
        campaigns.start(tenant.account_id, make_campaign(tenant, news.id))
        core_db.session.remove()
    urls = urls_of(smtp_sink.wait_for(1)[0].message)
    match = re.search(r'href="([^"]*/preferences/[^"]+)"', urls.html)
    assert match and urls.beacon is not None and urls.clicks

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + path_of(match.group(1).replace("&amp;", "&")))
    assert page.is_checked("#tracking")
    assert page.locator("#data-request-link").is_visible()
    page.uncheck("#tracking")
    page.click("#save-tracking")
    page.wait_for_selector("#preferences-done")
    assert "no longer recorded" in page.locator("#preferences-done").inner_text()
    assert not page.is_checked("#tracking")
    screenshot(page, "preferences-tracking-off-390")
    assert_no_axe_violations(page, "preferences-tracking-off-390")
    assert_fits(page, "preferences-tracking-off-390")

    # Their opens and clicks still work for them and record nothing at all.
    with time_machine.travel(utcnow() + timedelta(minutes=1), tick=True):
        assert page.request.get(urls.beacon).status == 200
        for click in urls.clicks:
            assert page.request.get(click, max_redirects=0).status == 302
        drain(app)
    assert _event_count(app) == 0
    with app.app_context():
        status = core_db.session.scalar(select(Subscription.status))
        core_db.session.remove()
    assert status == "subscribed"
