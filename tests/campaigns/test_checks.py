"""Pre-send checks: each positive and negative, shown on the campaign page, and errors that
block the send and schedule services (not only the page)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from accounts import services as accounts
from accounts.queries import get_account
from campaigns import ab_tests, checks, services
from campaigns.models import CampaignStatus
from core.db import utcnow
from core.errors import ValidationError
from subscribers import services as subscribers
from tests.factories import login, make_campaign, make_list_with_contacts, make_tenant

GOOD = (
    "<html><body><p>Hello {{ contact.first_name or 'there' }}, our spring letter has news "
    "about the garden, the shop and the café. Read on for the details of every change we "
    "made this season, and for the dates of the open days in April and May.</p>"
    '<img src="https://shop.example/a.png" alt="The garden in April">'
    '<a href="https://shop.example/news">Read more</a> <a href="mailto:hi@shop.example">Write</a>'
    "</body></html>"
)


def _campaign(html: str = GOOD, subject: str = "Spring news", addresses: Any = None) -> Any:
    tenant = make_tenant()
    list_id = make_list_with_contacts(tenant, addresses or ["ana@example.org"])
    campaign_id = make_campaign(tenant, list_id, html=html, subject=subject)
    return tenant, list_id, services.get_campaign(tenant.account_id, campaign_id)


def _by_code(campaign: Any) -> dict[str, checks.Check]:
    found = checks.run_checks(campaign, get_account(campaign.account_id))
    return {check.code: check for check in found}


def test_a_good_campaign_passes_every_check(db: Any) -> None:
    tenant = make_tenant()
    list_id = make_list_with_contacts(tenant, [])
    subscribers.add_contact_to_list(tenant.account_id, list_id, "zoë@bücher.example", "Zoë Ñ")
    campaign_id = make_campaign(tenant, list_id, html=GOOD, subject="Spring news")
    campaign = services.get_campaign(tenant.account_id, campaign_id)
    found = _by_code(campaign)
    assert {c.level for c in found.values()} == {"ok"}, found
    assert set(found) >= {
        "subject", "first_text", "alt", "image_only", "links", "size", "unsubscribe",
        "postal_address", "personalisation",
    }  # fmt: skip
    assert all(check.why for check in found.values())
    assert "Hello Sample, our spring letter" in found["first_text"].message  # as rendered


@pytest.mark.parametrize(
    ("html", "subject", "code", "level"),
    [
        (GOOD, "A" * 61, "subject", "warning"),
        (
            GOOD.replace("<p>Hello", '<img src="https://shop.example/h.png" alt="">Hello')
            .replace("<p>", "")
            .replace("</p>", ""),
            "S",
            "first_text",
            "ok",
        ),
        (
            '<html><body><img src="https://shop.example/a.png"></body></html>',
            "S",
            "first_text",
            "warning",
        ),
        (GOOD.replace(' alt="The garden in April"', ""), "S", "alt", "warning"),
        (
            '<html><body><img src="https://x.example/a.png" alt="Sale"> <p>Sale!</p></body></html>',
            "S",
            "image_only",
            "warning",
        ),
        (GOOD.replace("https://shop.example/news", "#"), "S", "links", "error"),
        (GOOD.replace("https://shop.example/news", "javascript:alert(1)"), "S", "links", "error"),
        (GOOD.replace("https://shop.example/news", "/news"), "S", "links", "error"),
        (GOOD.replace("https://shop.example/news", "https:///news"), "S", "links", "error"),
        (GOOD.replace("https://shop.example/news", ""), "S", "links", "error"),
        (GOOD.replace("</body>", "<p>" + "x" * 95_000 + "</p></body>"), "S", "size", "warning"),
        (GOOD.replace("</body>", "<p>" + "ü" * 60_000 + "</p></body>"), "S", "size", "error"),
        (GOOD.replace("</body></html>", "<!-- an unclosed comment"), "S", "unsubscribe", "error"),
        (
            GOOD.replace("</body></html>", "<!-- an unclosed comment"),
            "S",
            "postal_address",
            "error",
        ),
    ],
)
def test_each_check_finds_its_problem(
    db: Any, html: str, subject: str, code: str, level: str
) -> None:
    _, _, campaign = _campaign(html=html, subject=subject)
    found = _by_code(campaign)
    assert found[code].level == level, found[code]


def test_missing_postal_address_is_an_error(db: Any) -> None:
    _, _, campaign = _campaign()
    accounts.update_general_settings(campaign.account_id, "Shop", "")
    assert _by_code(campaign)["postal_address"].level == "error"


def test_personalisation_fields_some_recipients_lack_are_counted(db: Any) -> None:
    html = GOOD.replace("Hello", "Hello {{ contact.attributes.city }} {{ contact.name }}")
    tenant, list_id, campaign = _campaign(html=html, addresses=["ana@example.org"])
    for index, (address, name, city) in enumerate(
        [
            ("zoë@bücher.example", "Zoë", "Köln"),
            ("li@example.cn", "", "北京"),
            ("bo@example.org", "Bo", ""),
            ("cy@example.org", "Cy", None),
        ]
    ):
        attributes = {"city": city, "n": index} if city is not None else None
        subscribers.add_contact_to_list(
            tenant.account_id, list_id, address, name=name, attributes=attributes
        )
    found = _by_code(campaign)["personalisation"]
    assert found.level == "warning"
    # ana has neither; li has no name; bo an empty city; cy no attributes at all.
    assert "contact.attributes.city (3 recipients)" in found.message
    assert "contact.name (2 recipients)" in found.message
    assert "contact.first_name" in found.message  # used by GOOD, missing for the same two


def test_ab_variant_subjects_are_checked(db: Any) -> None:
    tenant, _, campaign = _campaign()
    accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
    ab_tests.save_ab_test(
        tenant.account_id,
        campaign.id,
        subjects=["Short", "L" * 70],
        test_percent=20,
        metric="opens",
        wait_minutes=60,
        auto_send=True,
    )
    found = _by_code(campaign)["subject"]
    assert found.level == "warning" and "Variant B" in found.message


def test_errors_block_the_send_and_schedule_services(db: Any) -> None:
    tenant, _, campaign = _campaign(html=GOOD.replace("https://shop.example/news", "#"))
    with pytest.raises(ValidationError) as refused:
        services.start(tenant.account_id, campaign.id)
    assert "broken links" in refused.value.message and "goes nowhere" in refused.value.message
    with pytest.raises(ValidationError):
        services.schedule(tenant.account_id, campaign.id, utcnow() + timedelta(hours=1))
    assert services.get_campaign(tenant.account_id, campaign.id).status == CampaignStatus.DRAFT


def test_warnings_do_not_block(db: Any) -> None:
    tenant, _, campaign = _campaign(subject="A very long subject " * 5)
    assert _by_code(campaign)["subject"].level == "warning"
    assert services.start(tenant.account_id, campaign.id).status == CampaignStatus.SENDING


def test_checks_are_shown_on_the_campaign_page_with_why(app: Flask, db: Any) -> None:
    tenant, _, campaign = _campaign(html=GOOD.replace(' alt="The garden in April"', ""))
    client = app.test_client()
    login(client, tenant.email)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'id="checks"' in page and 'data-check="alt" data-level="warning"' in page
    assert "Why: Many clients block images" in page and "Nothing blocks sending" in page
