"""A campaign sent "at each recipient's best hour" within a window (engine output 2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from campaigns import services as campaigns
from campaigns.models import Message
from privacy import engine_gate
from subscribers.models import Contact
from tests.engine.sending import message_for
from tests.factories import make_campaign, make_list_with_contacts, make_tenant

EVENING = datetime(2026, 11, 20, 20, 15)


def _due_by_email(db: Any, campaign_id: int) -> dict[str, datetime | None]:
    rows = db.execute(
        select(Contact.email, Message.due_at)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id)
    ).all()
    return {email: due for email, due in rows}


def _campaign_with_window(tenant: Any, list_id: int) -> int:
    campaign_id = make_campaign(tenant, list_id)
    campaign = campaigns.get_campaign(tenant.account_id, campaign_id)
    campaigns.save_campaign(
        tenant.account_id,
        campaign_id=campaign_id,
        name=campaign.name,
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        html_body=campaign.html_body,
        list_ids=campaigns.campaign_list_ids(campaign_id),
        best_hour_window=(6, 12),
    )
    return campaign_id


def _opens_at(db: Any, tenant: Any, email: str, hour: int) -> None:
    message_id = message_for(tenant, email)
    for _ in range(2):
        assert engine_gate.record_engagement(
            tenant.account_id, message_id, "open", EVENING.replace(hour=hour), False
        )
    db.commit()


def test_recipients_wait_for_their_best_hour_in_the_window(app: Flask, db: Any) -> None:
    with time_machine.travel(EVENING, tick=False):
        tenant = make_tenant()
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        list_id = make_list_with_contacts(tenant, ["ann@inbox.example", "bob@inbox.example"], "L")
        _opens_at(db, tenant, "ann@inbox.example", 9)
        campaign_id = _campaign_with_window(tenant, list_id)
        campaigns.start(tenant.account_id, campaign_id)
        due = _due_by_email(db, campaign_id)
    assert due["ann@inbox.example"] == datetime(2026, 11, 21, 9, 0)  # her best hour, tomorrow
    assert due["bob@inbox.example"] == datetime(2026, 11, 21, 6, 0)  # unknown: window opens


def test_an_account_that_opted_out_gets_no_per_recipient_times(app: Flask, db: Any) -> None:
    with time_machine.travel(EVENING, tick=False):
        tenant = make_tenant()
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        list_id = make_list_with_contacts(tenant, ["ann@inbox.example"], "L")
        _opens_at(db, tenant, "ann@inbox.example", 9)
        accounts.set_engine_participation(tenant.account_id, False)
        campaign_id = _campaign_with_window(tenant, list_id)
        campaigns.start(tenant.account_id, campaign_id)
        due = _due_by_email(db, campaign_id)
    assert due["ann@inbox.example"] == datetime(2026, 11, 21, 6, 0)  # the window, not the engine
