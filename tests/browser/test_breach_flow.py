"""In Chromium: a platform operator records a security incident (a missing field is refused
inline), selects the affected account, sends the notice, then attaches and sends the report;
the account's owner reads both under Settings > Breach notices (at 390 px too) and the
Security log shows them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import User
from core import db as core_db
from tests.browser.conftest import LiveServer, reload_until, screenshot
from tests.factories import PASSWORD, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

OPERATOR = "ops@envoy.example"
OWNER = "olga@cafe-olga.example"


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def _log_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")


def test_operator_notifies_and_reports_and_the_owner_reads_it(
    live_server: LiveServer, page: Any, phone: Any, smtp_sink: SMTPSink
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        operator = make_tenant(OPERATOR, "Envoy Ops")
        user = core_db.session.get(User, operator.user_id)
        assert user is not None
        user.is_platform_admin = True
        core_db.session.commit()
        cafe = make_tenant(OWNER, "Café Ольга & Zoë")
        make_list_with_contacts(cafe, ["zoe@example.org", "li@example.cn"])
        core_db.session.remove()

    _log_in(page, base, OPERATOR)
    page.click(".account > summary")
    page.click("nav.operator >> text=Breaches")
    page.wait_for_url(f"{base}/admin/breaches")
    assert "No incident recorded" in page.inner_text("main")
    page.fill("#title", "Leaked replica credential")
    page.fill("#what_happened", "A replica credential leaked and was used to read contacts.")
    page.fill("#discovered_at", "2026-11-19T22:15")
    page.fill("#data_categories", "Contact email addresses and names.")
    page.fill("#consequences", "Phishing of your contacts is possible.")
    page.click("main button[type=submit]")
    assert "This field is required." in page.inner_text(".field.has-error")
    screenshot(page, "breach-record-refused")
    page.fill("#measures", "The credential was revoked; the replica was rebuilt.")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/admin/breaches/*")
    assert "Select the affected accounts next." in page.inner_text(".flash")

    page.check("text=Café Ольга & Zoë")
    page.click("#select-accounts button[type=submit]")
    page.wait_for_url(f"{base}/admin/breaches/*")
    assert "2 contacts concerned" in page.inner_text("#affected-total")
    page.click("#send-notices button[type=submit]")
    assert "on its way to the owners of 1 account" in page.inner_text(".flash")
    smtp_sink.wait_for(1)
    reload_until(page, lambda: "UTC" in page.inner_text("#affected"), "the notice's delivery")
    screenshot(page, "breach-notified")

    page.fill("#report", "Every replica credential was rotated; replicas need client certificates.")
    page.click("#send-report button[type=submit]")
    assert "The incident is closed." in page.inner_text(".flash")
    smtp_sink.wait_for(2)
    reload_until(
        page,
        lambda: "report-delivered" in page.inner_text("#incident-log"),
        "the report's delivery",
    )
    assert "Reported" in page.inner_text("#incident-status")
    assert "report-delivered" in page.inner_text("#incident-log")
    screenshot(page, "breach-reported")
    subjects = [" ".join(str(r.message["Subject"]).split()) for r in smtp_sink.to(OWNER)]
    assert "Security incident notice: Leaked replica credential" in subjects
    assert "Report on the security incident: Leaked replica credential" in subjects

    _log_in(phone, base, OWNER)
    phone.goto(f"{base}/settings")
    phone.click("nav.tabs >> text=Breach notices")
    phone.wait_for_url(f"{base}/settings/breach-notices")
    text = phone.inner_text("main")
    assert "Leaked replica credential" in text
    assert "Every replica credential was rotated" in text
    screenshot(phone, "breach-notices-owner-390")
    phone.click("nav.tabs >> text=Security log")
    phone.wait_for_url(f"{base}/settings/security-log")
    assert "Breach notice" in phone.inner_text("#security-log")
    phone.select_option("#kind", "breach-notice")
    phone.click("#security-log-filter button")
    phone.wait_for_url(f"{base}/settings/security-log?kind=breach-notice")
    assert phone.locator("#security-log tbody tr").count() == 2
    # Five Settings tabs fit a phone: the page never scrolls sideways.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "security-log-owner-390")
