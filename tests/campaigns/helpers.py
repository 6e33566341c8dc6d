"""Shared set-up for the sending tests: a tenant with a verified sender, a list, a campaign;
for the bounce tests, a sent campaign and the sample reports that name its messages."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from campaigns import senders, services
from campaigns.models import Campaign, Message
from core import db
from subscribers.models import Contact
from tests.conftest import drain
from tests.factories import Tenant, make_list_with_contacts, make_tenant

SAMPLES = Path(__file__).parent / "samples"
RETURN_PATH = "bounces@shop.example"


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
    senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
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


def sent_campaign(app: Flask, addresses: list[str]) -> dict[str, tuple[str, str]]:
    """Send a campaign to the SMTP sink; return recipient -> (Message-ID, VERP envelope sender)."""
    setup = campaign_with(addresses)
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    return {
        r.recipients[0]: (str(r.message["Message-ID"]), r.envelope_from)
        for r in app.extensions["test_sink"].wait_for(len(addresses))
    }


def sample_report(name: str, recipient: str, message_id: str, verp: str) -> bytes:
    """A sample report from ``samples/`` naming this recipient, Message-ID and VERP address."""
    text = (SAMPLES / name).read_text()
    text = text.replace("{{RECIPIENT}}", recipient).replace("{{MESSAGE_ID}}", message_id)
    return text.replace("{{VERP}}", verp).replace("\n", "\r\n").encode()


def message_to(address: str) -> Message:
    """The (freshly loaded) message row sent to ``address``."""
    db.session.expire_all()
    row = db.session.scalar(
        select(Message)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Contact.email == address)
    )
    assert row is not None
    return row


def campaign_account_id() -> int:
    """The account of the (first) campaign in the database."""
    account_id = db.session.scalar(select(Campaign.account_id))
    assert account_id is not None
    return int(account_id)
