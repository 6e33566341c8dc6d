"""Reads for the public unsubscribe page: who is asking, and what the person leaves."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from accounts.models import Account
from campaigns import queries as campaign_queries
from campaigns.models import Campaign, CampaignList, Message
from core import db
from subscribers import services as subscriber_services
from subscribers.models import MailingList, Subscription
from tracking.models import MessageUnsubscribe


@dataclass(frozen=True)
class UnsubscribePage:
    """What the unsubscribe page of one message (or of a test message) shows."""

    account_name: str  # who is asking: the account that sent the email
    sender: str  # the From of the email, as the person saw it
    all_lists: bool  # the email went to several lists or segments: leaving means every list
    lists: list[str]  # the list(s) the person leaves (or left)
    unsubscribed: bool  # nothing is left to leave
    preference_url: str
    test: bool = False


def _sender(campaign: Campaign) -> str:
    """The From as a person reads it (not MIME-encoded): ``Name <address>``."""
    if campaign.from_name and campaign.from_email:
        return f"{campaign.from_name} <{campaign.from_email}>"
    return campaign.from_name or campaign.from_email


def _names(list_ids: list[int]) -> list[str]:
    if not list_ids:
        return []
    return list(
        db.session.scalars(
            select(MailingList.name).where(MailingList.id.in_(list_ids)).order_by(MailingList.name)
        )
    )


def unsubscribe_page(message_id: int) -> UnsubscribePage | None:
    """The page of a message's unsubscribe link; None when the message is unknown or its
    contact is gone (erased): the link then unsubscribes nobody."""
    row = db.session.execute(
        select(Message, Campaign, Account.name)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .join(Account, Account.id == Campaign.account_id)
        .where(Message.id == message_id)
    ).first()
    if row is None or row[0].contact_id is None:
        return None
    message, campaign, account_name = row
    statuses = dict(
        db.session.execute(
            select(Subscription.list_id, Subscription.status)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(
                Subscription.contact_id == message.contact_id,
                MailingList.account_id == campaign.account_id,
            )
        ).all()
    )
    single_list = campaign_queries.unsubscribe_list_id(campaign.id)
    if single_list is not None:
        lists = _names([single_list])
        unsubscribed = statuses.get(single_list, "unsubscribed") == "unsubscribed"
    else:
        on = [list_id for list_id, status in statuses.items() if status != "unsubscribed"]
        unsubscribed = not on
        left = db.session.scalar(
            select(MessageUnsubscribe.list_ids).where(MessageUnsubscribe.message_id == message_id)
        )
        lists = _names(on or [int(i) for i in left or []])
    return UnsubscribePage(
        account_name=account_name,
        sender=_sender(campaign),
        all_lists=single_list is None,
        lists=lists,
        unsubscribed=unsubscribed,
        preference_url=subscriber_services.preference_url_for_message(message_id),
    )


def test_unsubscribe_page(campaign_id: int) -> UnsubscribePage | None:
    """The page a test message's unsubscribe link shows: the campaign's sender and lists, as a
    recipient would see them; None when the campaign is gone."""
    row = db.session.execute(
        select(Campaign, Account.name)
        .join(Account, Account.id == Campaign.account_id)
        .where(Campaign.id == campaign_id)
    ).first()
    if row is None:
        return None
    campaign, account_name = row
    list_ids = list(
        db.session.scalars(
            select(CampaignList.list_id).where(CampaignList.campaign_id == campaign_id)
        )
    )
    return UnsubscribePage(
        account_name=account_name,
        sender=_sender(campaign),
        all_lists=campaign_queries.unsubscribe_list_id(campaign_id) is None,
        lists=_names(list_ids),
        unsubscribed=False,
        preference_url=subscriber_services.preference_test_url(campaign_id),
        test=True,
    )
