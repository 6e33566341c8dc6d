"""A marketer sees how many people a campaign will reach before sending, confirms that number,
is asked again when the audience changed, finds campaigns by search, duplicates one, and sees
which personalisation fields a contact lacks, in headless Chromium (also 390 px wide)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from campaigns import senders, services
from core import db as core_db
from privacy import services as privacy
from subscribers import services as subscribers
from subscribers.models import Contact
from subscribers.suppression import suppress
from tests.browser.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_tenant
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

RECIPIENTS = ["zoe@example.org", "li@example.cn", "olga@example.ru", "ada@example.org"]


def _setup(server: LiveServer) -> tuple[int, int]:
    with server.app.app_context():
        tenant = make_tenant(email="ann@shop.example")
        senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
        first = subscribers.create_list(tenant.account_id, "Clients").id
        second = subscribers.create_list(tenant.account_id, "Подписчики").id
        people = {
            "zoe@example.org": ("Zoë Ñúñez", {"city": "Sevilla"}),
            "li@example.cn": ("李小龍", {}),
            "olga@example.ru": ("Ольга", {"city": "Москва"}),
            "ada@example.org": ("", {}),
            "gone@example.org": ("Gone", {}),
            "quiet@example.org": ("Quiet", {}),
        }
        for address, (name, attributes) in people.items():
            subscribers.add_contact_to_list(
                tenant.account_id, first, address, name=name, attributes=attributes
            )
        for address in ("zoe@example.org", "olga@example.ru"):
            subscribers.add_contact_to_list(tenant.account_id, second, address)
        suppress(tenant.account_id, "gone@example.org", "hard_bounce")
        core_db.session.commit()
        quiet = core_db.session.scalar(
            select(Contact.id).where(Contact.email == "quiet@example.org")
        )
        assert quiet is not None
        privacy.restrict_contact(tenant.account_id, quiet, tenant.user_id)
        for n in range(3):
            services.save_campaign(
                tenant.account_id,
                campaign_id=None,
                name=f"Archive {n}",
                subject="Old news",
                from_name="Shop",
                from_email="news@shop.example",
                html_body="<p>x</p>",
                list_ids=[first],
            )
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Rentrée",
            subject="{{ contact.first_name }}, la rentrée à {{ contact.attributes.city }}",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<html><body><h1>Bonjour {{ contact.first_name }}</h1>"
            "<p>À bientôt à {{ contact.attributes.city }}.</p></body></html>",
            list_ids=[first, second],
        )
        return first, campaign.id


def _login(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", "ann@shop.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard"))


def test_send_now_shows_the_count_and_asks_for_confirmation(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink
) -> None:
    base = live_server.url
    list_id, campaign_id = _setup(live_server)
    _login(page, base)

    # The list: search, then the campaign; its subject reads rendered, marked personalised.
    page.click("nav >> text=Campaigns")
    page.fill("#q", "RENTRÉE")
    page.click("#campaign-search button[type=submit]")
    page.wait_for_url(re.compile(r".*q=RENTR"))
    assert page.locator("table a").all_inner_texts() == ["Rentrée"]
    assert "[first_name], la rentrée à [city]" in page.locator("table .hint").inner_text()
    screenshot(page, "campaigns-search")
    page.click("table >> text=Rentrée")

    # The campaign page says how many before anything is sent, and what a contact lacks.
    page.wait_for_selector("#audience-count")
    assert "Will be sent to 4 recipients" in page.locator("#audience-count").inner_text()
    assert "1 more on the lists is suppressed" in page.locator("#audience-count").inner_text()
    assert "contact.attributes.city" in page.locator("#missing-fields").inner_text()
    screenshot(page, "campaign-will-be-sent-to")

    page.click("#send-now")
    page.wait_for_selector("#confirm-send")
    assert page.locator("#recipient-count").inner_text() == "4 recipients"
    assert page.locator("#confirm-send-button").inner_text() == "Send now to 4 recipients"
    assert smtp_sink.messages == []  # looking sends nothing
    screenshot(page, "send-confirm")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "send-confirm-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Someone joins (more than 1 %) while the page is open: asked again, nothing sent.
    with live_server.app.app_context():
        account_id = core_db.session.scalar(
            select(Contact.account_id).where(Contact.email == "zoe@example.org")
        )
        assert account_id is not None
        subscribers.add_contact_to_list(account_id, list_id, "late@example.org", name="Late")
    page.click("#confirm-send-button")
    page.wait_for_selector("#audience-changed")
    assert "it is now 5 recipients, not 4" in page.locator("#audience-changed").inner_text()
    assert page.locator("#confirm-send-button").inner_text() == "Send now to 5 recipients"
    assert smtp_sink.messages == []
    screenshot(page, "send-confirm-audience-changed")

    page.click("#confirm-send-button")
    page.wait_for_selector(
        "text=Sending started to 5 recipients (1 suppressed address is skipped)."
    )
    received = smtp_sink.wait_for(5)
    assert sorted(r.recipients[0] for r in received) == sorted([*RECIPIENTS, "late@example.org"])
    assert len(smtp_sink.messages) == 5
    screenshot(page, "send-started")

    # Duplicate the sent campaign: a new draft opens in the editor.
    page.click("#duplicate")
    page.wait_for_url(re.compile(r".*/campaigns/\d+/edit"))
    assert page.input_value("#name") == "Copy of Rentrée"
    assert page.input_value("#subject").startswith("{{ contact.first_name }}")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/campaigns")
    assert page.locator("table a").all_inner_texts()[:2] == ["Copy of Rentrée", "Rentrée"]
    screenshot(page, "campaigns-list-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # The report header and Zoë's access report: the subject rendered, never template code.
    page.goto(f"{base}/campaigns/{campaign_id}/report")
    assert "[first_name], la rentrée à [city]" in page.locator("#report-subject").inner_text()
    screenshot(page, "report-personalised-subject")
    with live_server.app.app_context():
        zoe = core_db.session.scalar(select(Contact.id).where(Contact.email == "zoe@example.org"))
    page.goto(f"{base}/privacy/contacts/{zoe}")
    sent = page.locator("h3:has-text('Emails sent to you') + .table-wrap")
    assert "Zoë, la rentrée à Sevilla" in sent.inner_text()
    assert "{{" not in page.locator("#report").inner_text()
    screenshot(page, "access-report-subject")


def test_a_large_accounts_campaign_page_shows_its_count_once_counted(
    live_server: LiveServer, page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above COUNT_AFTER_PAGE_CONTACTS the page answers first, with a progress bar where the
    count and the pre-send checks will be, and fills them in when they are counted."""
    from campaigns import audience_count

    monkeypatch.setattr(audience_count, "COUNT_AFTER_PAGE_CONTACTS", 2)
    base = live_server.url
    _list_id, campaign_id = _setup(live_server)
    _login(page, base)
    # When the count cannot be fetched the page says so, where the count would be.
    page.route("**/before-sending", lambda route: route.abort())
    page.goto(f"{base}/campaigns/{campaign_id}")
    page.wait_for_selector("#before-sending:not([aria-busy])")
    assert "could not be loaded" in page.locator("#before-sending-status").inner_text()
    assert page.locator("#before-sending .progress").is_hidden()
    screenshot(page, "campaign-count-not-loaded")
    page.unroute("**/before-sending")

    answers: list[Any] = []
    page.on("response", lambda r: answers.append(r) if "before-sending" in r.url else None)
    page.goto(f"{base}/campaigns/{campaign_id}")
    page.wait_for_selector("#audience-count")
    assert page.locator("#before-sending").count() == 0  # replaced by what was counted
    assert "Will be sent to 4 recipients" in page.locator("#audience-count").inner_text()
    assert page.locator("#checks [data-check=personalisation]").get_attribute("data-level") == (
        "warning"
    )
    assert [answer.status for answer in answers] == [200]
    screenshot(page, "campaign-count-after-page")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "campaign-count-after-page-390")
