"""The person-facing subscriber flows in a real headless Chromium, with screenshots:
sign-up form and confirmation, the preference centre from a received email, a CSV import
watched to the end with its error report downloaded, and the segment builder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from campaigns import services as campaign_services
from subscribers import services
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import make_campaign, make_tenant
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser


def _log_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_sign_up_through_the_public_form_and_confirm(
    live_server: LiveServer,
    page: Any,
    smtp_sink: SMTPSink,
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant("owner@bakery.example", "Bakery")
        news = services.create_list(tenant.account_id, "Bread news", "Fresh loaves weekly")
    _log_in(page, base, tenant.email)
    page.goto(f"{base}/lists/{news.id}")
    page.click("button:has-text('Turn the sign-up form on')")
    page.wait_for_selector("#signup-url")
    assert "<form" in page.input_value("#embed-snippet")
    screenshot(page, "subscribers-signup-form-settings")
    assert_no_axe_violations(page, "subscribers-signup-form-settings")
    form_url = page.get_attribute("#signup-url", "href")
    assert form_url

    visitor = page.context.browser.new_context()
    public = visitor.new_page()
    public.goto(form_url)
    public.fill("#email", "not an address")
    public.click("button:has-text('Subscribe')")
    # The click returns once the form is posted, not once its answer is shown.
    public.wait_for_selector(".error")
    assert public.locator(".error").first.is_visible()
    screenshot(public, "subscribers-signup-error")
    assert_no_axe_violations(public, "subscribers-signup-error")
    public.fill("#email", "reader@example.org")
    public.fill("#name", "Reader")
    public.click("button:has-text('Subscribe')")
    public.wait_for_selector("h1:has-text('Check your inbox')")
    screenshot(public, "subscribers-signup-check-inbox")

    received = smtp_sink.wait_for(1)[0]
    text = received.message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(http://\S+/subscribe/confirm/\S+)", text)
    assert link, text
    public.goto(link.group(1))
    screenshot(public, "subscribers-signup-confirm")
    assert_no_axe_violations(public, "subscribers-signup-confirm")
    public.click("button:has-text('Yes, subscribe me')")
    public.wait_for_selector("h1:has-text('You are subscribed')")
    screenshot(public, "subscribers-signup-confirmed")
    assert_no_axe_violations(public, "subscribers-signup-confirmed")
    public.goto(link.group(1))  # a second use is refused
    assert "already used" in public.content()
    visitor.close()

    page.goto(f"{base}/contacts?q=reader")
    page.click("text=reader@example.org")
    page.wait_for_selector("#consent-history")
    history = page.inner_text("#consent-history")
    assert "signup requested" in history and "subscribed" in history
    screenshot(page, "subscribers-contact-page")


def test_preference_centre_from_a_received_email(
    live_server: LiveServer,
    page: Any,
    smtp_sink: SMTPSink,
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@shop.example", "Shop")
        news = services.create_list(tenant.account_id, "News", "Monthly news")
        offers = services.create_list(tenant.account_id, "Offers", "Deals every week")
        services.set_signup_form(tenant.account_id, offers.id, True)
        services.add_contact_to_list(tenant.account_id, news.id, "pat@example.org", "Pat")
        campaign_services.start(tenant.account_id, make_campaign(tenant, news.id))
    message = smtp_sink.wait_for(1)[0].message
    html = message.get_body(preferencelist=("html",)).get_content()
    match = re.search(r'href="([^"]*/preferences/[^"]+)"', html)
    assert match, html
    page.goto(live_server.url + path_of(match.group(1).replace("&amp;", "&")))
    page.wait_for_selector("h1:has-text('Your email preferences')")
    screenshot(page, "subscribers-preferences")
    assert_no_axe_violations(page, "subscribers-preferences")
    page.uncheck(f"input[value='{news.id}']")
    page.check(f"input[value='{offers.id}']")
    page.click("button:has-text('Save my choices')")
    page.wait_for_selector("#preferences-done")
    assert page.is_checked(f"input[value='{offers.id}']")
    assert not page.is_checked(f"input[value='{news.id}']")
    screenshot(page, "subscribers-preferences-saved")
    assert_no_axe_violations(page, "subscribers-preferences-saved")
    page.click("button:has-text('Unsubscribe from everything')")
    page.wait_for_selector("text=unsubscribed from everything")
    assert not page.is_checked(f"input[value='{offers.id}']")
    screenshot(page, "subscribers-preferences-everything")


def test_import_a_csv_and_watch_the_progress_bar(
    live_server: LiveServer,
    page: Any,
    tmp_path: Path,
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant("owner@club.example", "Club")
        services.create_list(tenant.account_id, "Members")
    rows = ["Email,Name,City"] + [f"member{i}@club.example,Member {i},Oslo" for i in range(20000)]
    rows[5] = "this is not an address,Broken,Oslo"
    rows.append("member7@club.example,Again,Oslo")
    upload = tmp_path / "members.csv"
    upload.write_text("\n".join(rows) + "\n")

    _log_in(page, base, tenant.email)
    page.click("nav >> text=Imports")
    page.set_input_files("#file", str(upload))
    screenshot(page, "subscribers-import-upload")
    page.click("button:has-text('Upload and map columns')")
    page.wait_for_selector("#mapping-form")
    assert page.input_value("#column-0") == "email"
    assert page.input_value("#column-1") == "name"
    screenshot(page, "subscribers-import-mapping")
    assert_no_axe_violations(page, "subscribers-import-mapping")
    page.click("button:has-text('Start the import')")
    page.wait_for_selector("#import-progress, #import-result")
    page.wait_for_function(
        "() => document.querySelector('#import-result') || Number(document.querySelector("
        "'#import-progress .progress').getAttribute('aria-valuenow')) > 0"
    )
    if page.locator("#import-progress").count():
        page.wait_for_timeout(600)  # let the bar finish its transition
        screenshot(page, "subscribers-import-progress")  # the bar part-way
    page.wait_for_selector("#import-result", timeout=120_000)
    assert page.get_attribute("#import-result .progress", "aria-valuenow") == "100"
    assert page.inner_text("[data-stat=created]") == "19,999"
    assert page.inner_text("[data-stat=errors]") == "2"
    screenshot(page, "subscribers-import-done")
    assert_no_axe_violations(page, "subscribers-import-done")
    with page.expect_download() as download_info:
        page.click("#error-report")
    report = Path(download_info.value.path()).read_text()
    assert "invalid address" in report and "duplicate" in report
    assert "member7@club.example" in report


def test_segment_builder(
    live_server: LiveServer,
    page: Any,
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant("owner@travel.example", "Travel")
        trips = services.create_list(tenant.account_id, "Trips")
        for email, city in [
            ("ana@example.org", "Lisbon"),
            ("bo@example.org", "Oslo"),
            ("cy@example.org", "Lisbon"),
        ]:
            services.add_contact_to_list(tenant.account_id, trips.id, email, "", {"city": city})
    _log_in(page, base, tenant.email)
    page.click("nav >> text=Segments")
    page.wait_for_selector("text=No segments yet")
    page.click("text=Build a segment")
    page.fill("#name", "Lisbon travellers")
    row = page.locator("[data-rule]").first
    row.locator("[data-field]").select_option("attribute")
    assert row.locator("[data-key]").is_visible()
    row.locator("[data-key]").fill("city")
    row.locator("[data-op]").select_option("equals")
    row.locator("[data-value]").fill("lisbon")
    page.click("#add-rule")
    second = page.locator("[data-rule]").nth(1)
    second.locator("[data-field]").select_option("list")
    assert second.locator("[data-list]").is_visible()
    assert not second.locator("[data-value]").is_visible()
    second.locator("[data-op]").select_option("subscribed")
    screenshot(page, "subscribers-segment-builder")
    assert_no_axe_violations(page, "subscribers-segment-builder")
    page.click("button:has-text('Save segment')")
    page.wait_for_selector("#segment-count")
    assert page.inner_text("#segment-count") == "2"
    assert "cy@example.org" in page.content() and "bo@example.org" not in page.content()
    screenshot(page, "subscribers-segment-detail")
    assert_no_axe_violations(page, "subscribers-segment-detail")
