"""Shared set-up for the sending tests: a tenant with a verified sender, a list, a campaign."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from campaigns import services
from tests.factories import Tenant, make_list_with_contacts, make_tenant


@dataclass
class Setup:
    tenant: Tenant
    list_id: int
    campaign_id: int


def campaign_with(
    addresses: list[str],
    html: str = "<html><body><p>Hi {{ contact.first_name }}</p>"
    '<a href="https://shop.example/a">A</a></body></html>',
    subject: str = "Hello {{ contact.first_name }}",
    text: str = "",
    email: str = "owner@shop.example",
) -> Setup:
    tenant = make_tenant(email=email)
    services.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
    list_id = make_list_with_contacts(tenant, addresses)
    campaign = services.save_campaign(
        tenant.account_id,
        campaign_id=None,
        name="Test",
        subject=subject,
        from_name="Shop",
        from_email="news@shop.example",
        html_body=html,
        text_body=text,
        list_ids=[list_id],
    )
    return Setup(tenant, list_id, campaign.id)


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def html_of(data: bytes) -> str:
    part = parse(data).get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_of(data: bytes) -> str:
    part = parse(data).get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
