"""Sending a campaign for engine tests: Message rows to engage with."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import services as campaigns
from campaigns.models import Campaign, Message
from campaigns.sending import delivery
from core import db
from subscribers.models import Contact, MailingList
from tests.factories import Tenant, make_campaign


def message_for(tenant: Tenant, email: str) -> int:
    """The id of a sent message to ``email`` (a campaign to the tenant's first list is sent
    once, through the real sender, the first time one is needed)."""
    found = db.session.scalar(
        select(Message.id)
        .join(Contact, Contact.id == Message.contact_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Campaign.account_id == tenant.account_id, Contact.email == email)
    )
    if found is not None:
        return found
    list_id = db.session.scalar(
        select(MailingList.id)
        .where(MailingList.account_id == tenant.account_id)
        .order_by(MailingList.id)
    )
    assert list_id is not None
    campaign_id = make_campaign(tenant, list_id)
    campaigns.start(tenant.account_id, campaign_id)
    while delivery.send_batch(campaign_id):
        pass
    delivery.send_batch(campaign_id)
    message_id = db.session.scalar(
        select(Message.id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id, Contact.email == email)
    )
    assert message_id is not None
    return message_id
