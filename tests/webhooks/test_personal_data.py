"""The webhook store in the registry: the access report lists the events about a contact,
restriction stops their waiting deliveries, retention removes ended events after the period
and keeps those still being delivered."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from flask import Flask
from sqlalchemy import func, select

from core import db as core_db
from core.db import utcnow
from privacy import registry
from subscribers import services as subscribers
from subscribers.models import Contact
from tests.conftest import drain
from tests.factories import make_list_with_contacts, make_tenant
from tests.webhooks.receiver import Receiver
from webhooks import endpoints
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from webhooks.personal_data import apply_retention

ADDRESS = "li.xiaolong@例子.example"


def _subscribed(app: Flask, url: str) -> tuple[int, int]:
    with app.app_context():
        tenant = make_tenant()
        endpoints.create_endpoint(tenant.account_id, None, url, ["contact.subscribed"])
        make_list_with_contacts(tenant, [ADDRESS])
        contact = core_db.session.scalars(
            select(Contact).where(Contact.account_id == tenant.account_id)
        ).one()
        found = (tenant.account_id, contact.id)
        core_db.session.remove()
    return found


def test_the_access_report_lists_the_events_about_the_contact(
    app: Flask, receiver: Receiver
) -> None:
    _account_id, contact_id = _subscribed(app, receiver.url)
    with app.app_context():
        contact = subscribers.get_contact(_account_id, contact_id)
        person = registry.person_for(contact.email, [contact])
        records = dict((store.name, found) for store, found in registry.report(person))[
            "webhook_events"
        ]
    [record] = records[contact_id]
    assert record["event"] == "contact.subscribed" and record["email"] == contact.email


def test_restriction_stops_waiting_deliveries(app: Flask, receiver: Receiver) -> None:
    receiver.default = 500
    account_id, contact_id = _subscribed(app, receiver.url)
    drain(app)  # first attempt fails; the retry waits
    with app.app_context():
        contact = subscribers.get_contact(account_id, contact_id)
        registry.restrict(
            registry.person_for(contact.email, [contact], account_id), "restricted_at"
        )
        core_db.session.commit()
        row = core_db.session.scalars(select(WebhookDelivery)).one()
        assert row.status == DeliveryStatus.FAILED
        assert "may no longer be processed" in row.last_error


def test_retention_removes_ended_events_after_the_period(app: Flask, receiver: Receiver) -> None:
    _subscribed(app, receiver.url)
    drain(app)
    receiver.default = 500
    with app.app_context():
        tenant = make_tenant("second@shop.example")
        endpoints.create_endpoint(tenant.account_id, None, receiver.url, ["contact.subscribed"])
        make_list_with_contacts(tenant, ["waiting@example.org"])
        core_db.session.remove()
    drain(app)  # this one waits for its retry
    with app.app_context():
        assert apply_retention(utcnow()) == 0
        later = utcnow() + timedelta(days=31)
        with time_machine.travel(later, tick=False):
            assert apply_retention(later) == 1
        left = core_db.session.scalars(select(WebhookEvent)).all()
        assert [e.payload["data"]["email"] for e in left] == ["waiting@example.org"]
        assert core_db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
