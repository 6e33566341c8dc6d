"""In Chromium: the public data-request form from request to confirmed export download, the
access report page, and an account's deletion and reactivation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from accounts.models import Account
from core import db as core_db
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser


def _link(smtp_sink: SMTPSink, address: str, marker: str) -> str:
    for received in reversed(smtp_sink.to(address)):
        body = received.message.get_body(preferencelist=("plain",))
        assert body is not None
        for url in re.findall(r"https?://\S+", body.get_content()):
            if marker in url:
                return str(url)
    raise AssertionError(f"no {marker} link for {address}")


def test_public_form_to_confirmed_export_download(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink, tmp_path: Path
) -> None:
    app = live_server.app
    app.config["DATA_REQUEST_EMAIL_WINDOW"] = 0
    with app.app_context():
        shop = make_tenant("owner@shop.example", "Corner Shop")
        make_list_with_contacts(shop, ["dana@example.org"], name="Weekly offers")
        club = make_tenant("owner@club.example", "Running Club")
        make_list_with_contacts(club, ["dana@example.org"], name="Race news")
    base = live_server.url

    page.goto(f"{base}/privacy/request")
    page.click("button[type=submit]")
    assert page.locator(".error").first.is_visible()
    screenshot(page, "privacy-request-errors")
    assert_no_axe_violations(page, "privacy-request-errors")
    page.fill("#email", "dana@example.org")
    page.check("input[name=kind][value=export]")
    screenshot(page, "privacy-request-form")
    page.click("button[type=submit]")
    page.wait_for_selector("#check-inbox")
    screenshot(page, "privacy-check-inbox")
    assert_no_axe_violations(page, "privacy-check-inbox")

    page.goto(_link(smtp_sink, "dana@example.org", "/privacy/confirm/"))
    page.wait_for_selector("#confirm-request")
    screenshot(page, "privacy-confirm")
    assert_no_axe_violations(page, "privacy-confirm")
    page.click("#confirm-request")
    page.wait_for_selector("#downloads")
    screenshot(page, "privacy-export-ready")
    assert_no_axe_violations(page, "privacy-export-ready")
    with page.expect_download() as info:
        page.click("button:has-text('Export (JSON)')")
    saved = tmp_path / "export.json"
    info.value.save_as(saved)
    data = json.loads(saved.read_text())
    assert {a["account"] for a in data["accounts"]} == {"Corner Shop", "Running Club"}
    with page.expect_download() as info:
        page.click("button:has-text('Export (CSV)')")
    csv_file = tmp_path / "export.csv"
    info.value.save_as(csv_file)
    assert csv_file.read_text().startswith("account,category,section,record,field,value")
    page.click("button:has-text('Export (JSON)')")  # a second time: the download is spent
    page.wait_for_selector("#link-problem")
    screenshot(page, "privacy-download-spent")
    assert_no_axe_violations(page, "privacy-download-spent")

    # The access report as a page, covering both accounts.
    page.goto(f"{base}/privacy/request")
    page.fill("#email", "dana@example.org")
    page.check("input[name=kind][value=access]")
    page.click("button[type=submit]")
    page.wait_for_selector("#check-inbox")
    page.goto(_link(smtp_sink, "dana@example.org", "/privacy/confirm/"))
    page.click("#confirm-request")
    page.wait_for_selector("#report")
    assert page.locator(".holding").count() == 2
    assert page.locator("#complaint").is_visible()
    screenshot(page, "privacy-access-report")
    assert_no_axe_violations(page, "privacy-access-report")


def test_account_deletion_and_reactivation(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@bakery.example", "Bakery")
    base = live_server.url
    page.goto(f"{base}/login")
    page.fill("#email", tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/settings?tab=general")
    page.click("text=Delete the account…")
    screenshot(page, "account-delete")
    assert_no_axe_violations(page, "account-delete")
    page.click("#request-deletion")
    page.wait_for_selector("text=We emailed a confirmation link")

    page.goto(_link(smtp_sink, tenant.email, "/account/delete/confirm/"))
    screenshot(page, "account-delete-confirm")
    assert_no_axe_violations(page, "account-delete-confirm")
    page.click("#confirm-deletion")
    page.wait_for_selector("#deletion-scheduled")
    screenshot(page, "account-deletion-scheduled")
    assert_no_axe_violations(page, "account-deletion-scheduled")
    with app.app_context():
        account = core_db.session.scalar(select(Account).where(Account.id == tenant.account_id))
        assert account is not None and account.deletion_due_at is not None

    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("#email", tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#deletion-notice")
    assert "scheduled for deletion" in page.content()
    screenshot(page, "account-reactivate")
    assert_no_axe_violations(page, "account-reactivate")
    page.click("#reactivate")
    page.wait_for_selector("text=is reactivated")
    screenshot(page, "account-reactivated")
    with app.app_context():
        account = core_db.session.scalar(select(Account).where(Account.id == tenant.account_id))
        assert account is not None and account.deletion_due_at is None


def test_marketer_applies_a_correction_and_answers_for_one_contact(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("owner@shop.example", "Corner Shop")
        make_list_with_contacts(tenant, ["jo@example.org", "sam@example.org"], name="Offers")
    base = live_server.url

    # The person proposes a correction through the public form.
    page.goto(f"{base}/privacy/request")
    page.fill("#email", "jo@example.org")
    page.check("input[name=kind][value=rectify]")
    page.fill("#new_name", "Jo Martin")
    page.click("button[type=submit]")
    page.wait_for_selector("#check-inbox")
    page.goto(_link(smtp_sink, "jo@example.org", "/privacy/confirm/"))
    page.click("#confirm-request")
    page.wait_for_selector("#outcome")

    # The account is told, and applies it.
    page.goto(f"{base}/login")
    page.fill("#email", tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(_link(smtp_sink, tenant.email, "/privacy/requests"))
    page.wait_for_selector("#account-requests")
    screenshot(page, "privacy-account-requests")
    assert_no_axe_violations(page, "privacy-account-requests")
    page.click("button:has-text('Apply correction')")
    page.wait_for_selector("text=Correction applied and recorded.")
    assert page.locator("#account-requests .badge:has-text('applied')").count() == 1

    # From a contact's page: the privacy page, restriction, then erasure.
    page.click("nav >> text=Contacts")
    page.click("text=sam@example.org")
    page.click("text=Privacy: access, export, erase")
    page.wait_for_selector("#report")
    screenshot(page, "privacy-contact")
    assert_no_axe_violations(page, "privacy-contact")
    page.click("#restrict")
    page.wait_for_selector("text=Processing restricted")
    page.click("#erase")
    page.wait_for_selector("text=Tick the box")
    page.check("input[name=confirm]")
    page.click("#erase")
    page.wait_for_selector("text=The contact was erased")
    assert "sam@example.org" not in page.content()
    screenshot(page, "privacy-contact-erased")

    # A platform operator sees every request's steps and the periodic jobs.
    from accounts.models import User

    with app.app_context():
        owner = core_db.session.get(User, tenant.user_id)
        assert owner is not None
        owner.is_platform_admin = True
        core_db.session.commit()
    page.goto(f"{base}/admin/privacy")
    page.wait_for_selector("#tallies svg")
    assert "delete-inactive-accounts" in page.content()
    assert "jo@example.org" not in page.content()
    screenshot(page, "privacy-operator-log")
    assert_no_axe_violations(page, "privacy-operator-log")


def test_every_member_sees_the_pending_deletion_and_an_owner_reactivates_from_the_banner(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    app = live_server.app
    with app.app_context():
        tenant = make_tenant("zoe@bakery.example", "Bäckerei Ñúñez")
        from accounts import services as accounts

        accounts.add_member(tenant.account_id, "owner", "olga@bakery.example", "Ольга", "member")
        accounts.request_account_deletion(tenant.account_id, tenant.user_id, "owner")
    reset = _link(smtp_sink, "olga@bakery.example", "/password/reset/")
    base = live_server.url
    # The member chooses a password through the emailed link, in the browser.
    page.goto(reset)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your password is set")
    # The owner confirms the deletion by the emailed link.
    page.goto(_link(smtp_sink, tenant.email, "/account/delete/confirm/"))
    page.click("#confirm-deletion")
    page.wait_for_selector("#deletion-scheduled")

    page.goto(f"{base}/login")
    page.fill("#email", "olga@bakery.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/lists")
    banner = page.locator("#deletion-banner")
    assert banner.is_visible()
    assert "in 30 days" in banner.inner_text()
    assert "Only an owner can keep it" in banner.inner_text()
    assert page.locator("#banner-reactivate").count() == 0
    screenshot(page, "deletion-banner-member")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/campaigns")
    assert page.locator("#deletion-banner").is_visible()
    screenshot(page, "deletion-banner-member-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("#email", tenant.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#deletion-notice")  # login leads to the reactivation page first
    page.goto(f"{base}/lists")
    assert page.locator("#deletion-banner").is_visible()
    screenshot(page, "deletion-banner-owner")
    page.click("#banner-reactivate")
    page.wait_for_selector("text=is reactivated")
    assert page.locator("#deletion-banner").count() == 0
    screenshot(page, "deletion-banner-reactivated")
    with app.app_context():
        account = core_db.session.get(Account, tenant.account_id)
        assert account is not None and account.deletion_due_at is None
