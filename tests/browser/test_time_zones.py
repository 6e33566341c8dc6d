"""A marketer in New York: the account takes the browser's zone at sign-up, Settings shows it,
the schedule form reads New York time across the DST changes, and the report's hours are New
York hours, in headless Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from accounts import services as accounts
from accounts.models import Account, User
from campaigns import services as campaigns
from core import db as core_db
from core import timezones
from core.db import utcnow
from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_tracking_report import _hit
from tests.factories import PASSWORD, Tenant, make_campaign, make_list_with_contacts
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BODY, event_count

pytestmark = pytest.mark.browser

ZONE = "America/New_York"
RECIPIENTS = ["zoë.ñúñez@correo.example", "ольга@почта.example", "李小龍@郵件.example"]


@pytest.fixture
def new_york_page(browser: Any) -> Iterator[Any]:
    """A browser whose clock reads New York time (what Intl reports at sign-up)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def _sign_up(page: Any, base: str) -> None:
    page.goto(f"{base}/signup")
    page.fill("#account_name", "Bodega Ñúñez")
    page.fill("#name", "Zoë Ñúñez")
    page.fill("#email", "zoe@bodega.example")
    page.fill("#password", PASSWORD)
    page.check("#of_age")
    page.click("button:has-text('Create account')")
    page.wait_for_url(re.compile(r".*/lists"))


def test_a_new_york_marketer_schedules_and_reads_reports_in_new_york_time(
    live_server: LiveServer, new_york_page: Any, smtp_sink: SMTPSink
) -> None:
    page, base, app = new_york_page, live_server.url, live_server.app
    _sign_up(page, base)
    with app.app_context():
        account = core_db.session.query(Account).one()
        assert account.time_zone == ZONE  # from the browser, without asking
        account_id = account.id

    # Settings > General shows the zone; the person can change it there.
    page.goto(f"{base}/settings")
    assert page.input_value("#general-time_zone") == ZONE
    page.fill("#general-postal_address", "1 Calle Mayor, New York")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Settings saved.")
    assert page.input_value("#general-time_zone") == ZONE
    screenshot(page, "timezones-settings")

    with app.app_context():
        user = core_db.session.query(User).one()
        tenant = Tenant(account_id, user.id, user.email)
        list_id = make_list_with_contacts(tenant, RECIPIENTS, "Clientes")
        campaign_id = make_campaign(tenant, list_id, html=BODY, subject="Otoño")
        core_db.session.remove()

    # Schedule for 01:30 on the night the clocks go back: it happens twice, the first is taken.
    page.goto(f"{base}/campaigns/{campaign_id}")
    assert page.inner_text("label[for=send_at]") == "Send at (America/New York time)"
    page.fill("#send_at", "2031-11-02T01:30")
    page.click("button:has-text('Schedule')")
    page.wait_for_selector("#scheduled-at")
    assert page.inner_text("#scheduled-at") == "Scheduled for 2 Nov 2031, 01:30 EDT."
    notes = page.inner_text(".flash-info")
    assert "happens twice in America/New York" in notes and "not 01:30 EST" in notes
    screenshot(page, "timezones-scheduled-ambiguous")
    with app.app_context():
        scheduled = campaigns.get_campaign(account_id, campaign_id).scheduled_at
        assert scheduled is not None and scheduled.isoformat() == "2031-11-02T05:30:00"

    # A time the clocks skip in spring is refused on the field, nothing is scheduled.
    page.click("button:has-text('Unschedule')")
    page.wait_for_selector("text=Schedule removed")
    page.fill("#send_at", "2031-03-09T02:30")
    page.click("button:has-text('Schedule')")
    error = page.locator("#schedule .error")
    assert "does not exist in America/New York" in error.inner_text()
    assert "from 02:00 to 03:00" in error.inner_text()
    assert page.input_value("#send_at") == "2031-03-09T02:30"  # what was typed stays
    screenshot(page, "timezones-schedule-gap")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "timezones-schedule-gap-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Send now; opens over the next hours land on New York hours in the report.
    with app.app_context():
        accounts.update_privacy_settings(account_id, True, "truncate", 180)
        campaigns.start(account_id, campaign_id)
        core_db.session.remove()
    received = {r.unicode_recipients[0]: urls_of(r.message) for r in smtp_sink.wait_for(3)}
    start = utcnow()
    for hour, address in enumerate(RECIPIENTS, 1):
        beacon = received[address].beacon
        assert beacon is not None
        with time_machine.travel(start + timedelta(hours=hour), tick=True):
            assert _hit(base + path_of(beacon)) == 200
    deadline = time.monotonic() + 20
    while event_count(app) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert event_count(app) == 3
    page.goto(f"{base}/campaigns/{campaign_id}/report")
    page.wait_for_selector("#report-chart")
    assert page.inner_text("#series-zone") == "(per hour, America/New York time)"
    labels = page.locator("#report-chart .axis text").all_text_contents()
    first = timezones.to_local(start + timedelta(hours=1), ZONE)
    assert first.strftime("%d %b %H:00") in labels
    screenshot(page, "timezones-report")

    page.goto(f"{base}/reports")
    started = timezones.format_datetime(start, ZONE, date_only=True)
    assert started in page.inner_text("#overview")
