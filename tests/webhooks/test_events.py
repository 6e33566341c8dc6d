"""Every event type, emitted by the real flows and received (signed) on a local receiver:
messages sent, failed, bounced, complained, opened and clicked; contacts subscribed,
unsubscribed (one-click included) and erased (no address, earlier payloads scrubbed);
campaigns started and finished; imports finished; data requests fulfilled. Opens and clicks
name nobody when individual tracking is off or the person turned tracking off."""

from __future__ import annotations

import io
import json
from typing import Any

from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from campaigns import bounces
from campaigns import services as campaigns
from campaigns.models import Message
from core import db as core_db
from privacy import services as privacy
from subscribers import services as subscribers
from subscribers.models import Contact
from tests.conftest import drain
from tests.factories import Tenant, make_campaign, make_list_with_contacts, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.privacy.helpers import link_in, submit
from tests.smtp_sink import SMTPSink
from tests.webhooks.receiver import Receiver, verifies
from webhooks import endpoints
from webhooks.models import SUBSCRIBABLE, WebhookEvent

ADA = "ada.lovelace@example.org"
ZOE = "Zoë.Ångström@exämple.org"
BOUNCER = "nobody@example.net"
UA = {"User-Agent": "Mozilla/5.0 (iPhone)"}


def _tenant_with_endpoint(app: Flask, url: str, individual: bool) -> tuple[Tenant, str]:
    with app.app_context():
        tenant = make_tenant()
        accounts.update_privacy_settings(tenant.account_id, individual, "truncate", 180)
        created = endpoints.create_endpoint(
            tenant.account_id, tenant.user_id, url, [t.value for t in SUBSCRIBABLE]
        )
        secret = created.secret
        core_db.session.remove()
    return tenant, secret


def _send(app: Flask, smtp_sink: SMTPSink, tenant: Tenant, addresses: list[str]) -> int:
    with app.app_context():
        list_id = make_list_with_contacts(tenant, addresses)
        campaign_id = make_campaign(tenant, list_id)
        campaigns.start(tenant.account_id, campaign_id)
        core_db.session.remove()
    drain(app)
    return campaign_id


def _open_and_click(app: Flask, smtp_sink: SMTPSink, address: str) -> None:
    client = app.test_client(use_cookies=False)
    message = [m.message for m in smtp_sink.to(address) if m.message["List-Unsubscribe"]][-1]
    urls = urls_of(message)
    if urls.beacon:
        client.get(path_of(urls.beacon), headers=UA)
    client.get(path_of(urls.clicks[0]), headers=UA)
    drain(app)


def _data(receiver: Receiver, event_type: str) -> list[dict[str, Any]]:
    return [r.json["data"] for r in receiver.of_type(event_type)]


def test_message_and_campaign_events_carry_what_happened(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    tenant, secret = _tenant_with_endpoint(app, receiver.url, individual=True)
    smtp_sink.reply_for(BOUNCER, "550 5.1.1 no such user", stage="rcpt")
    campaign_id = _send(app, smtp_sink, tenant, [ADA, BOUNCER])
    assert all(verifies(secret, r) for r in receiver.requests)

    [started] = _data(receiver, "campaign.started")
    assert started == {"campaign_id": campaign_id, "name": "Hello"}
    [finished] = _data(receiver, "campaign.finished")
    assert finished["campaign_id"] == campaign_id
    assert finished["counts"] == {"sent": 1, "failed": 1}

    with app.app_context():
        ids = {
            email: (contact_id, message_id)
            for email, contact_id, message_id in core_db.session.execute(
                select(Contact.email, Contact.id, Message.id).join(
                    Message, Message.contact_id == Contact.id
                )
            )
        }
    [sent] = _data(receiver, "message.sent")
    assert sent == {
        "message_id": ids[ADA][1],
        "campaign_id": campaign_id,
        "contact_id": ids[ADA][0],
        "email": ADA,
    }
    [failed] = _data(receiver, "message.failed")
    assert failed["email"] == BOUNCER and failed["message_id"] == ids[BOUNCER][1]
    assert "550" in failed["reason"]
    [bounced] = _data(receiver, "message.bounced")
    assert bounced["email"] == BOUNCER
    assert (bounced["bounce"], bounced["source"]) == ("hard", "smtp")

    with app.app_context():
        bounces.record_bounce(ids[ADA][1], "complaint", "arf")
        bounces.record_bounce(ids[ADA][1], "complaint", "arf")  # a repeat is not a new event
    drain(app)
    [complained] = _data(receiver, "message.complained")
    assert complained["email"] == ADA and complained["source"] == "arf"

    _open_and_click(app, smtp_sink, ADA)
    [opened] = _data(receiver, "message.opened")
    [clicked] = _data(receiver, "message.clicked")
    for event in (opened, clicked):
        assert event["email"] == ADA and event["message_id"] == ids[ADA][1]
        assert event["contact_id"] == ids[ADA][0] and isinstance(event["machine"], bool)
    assert clicked["link_id"] is not None


def test_without_individual_tracking_no_open_or_click_names_anyone(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    tenant, _secret = _tenant_with_endpoint(app, receiver.url, individual=False)
    _send(app, smtp_sink, tenant, [ADA])
    _open_and_click(app, smtp_sink, ADA)
    assert receiver.of_type("message.sent")  # the endpoint does receive events
    assert receiver.of_type("message.opened") == []
    assert receiver.of_type("message.clicked") == []


def test_a_person_who_turned_tracking_off_is_not_sent_as_opening(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    tenant, _secret = _tenant_with_endpoint(app, receiver.url, individual=True)
    _send(app, smtp_sink, tenant, [ADA, ZOE])
    with app.app_context():
        ada = core_db.session.scalars(select(Contact).where(Contact.email == ADA)).one()
        token = subscribers.preference_url(ada.id).rsplit("/", 1)[1]
        subscribers.set_tracking_choice(token, False, None)
    _open_and_click(app, smtp_sink, ADA)
    _open_and_click(app, smtp_sink, ZOE)
    assert [d["email"] for d in _data(receiver, "message.opened")] == [ZOE]
    assert [d["email"] for d in _data(receiver, "message.clicked")] == [ZOE]


def test_subscription_events_including_one_click_unsubscribe(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    tenant, _secret = _tenant_with_endpoint(app, receiver.url, individual=False)
    _send(app, smtp_sink, tenant, [ADA, ZOE])
    subscribed = _data(receiver, "contact.subscribed")
    assert sorted(d["email"] for d in subscribed) == sorted([ADA, ZOE])
    assert all(d["list_id"] and d["source"] == "manual" for d in subscribed)

    message = [m.message for m in smtp_sink.to(ZOE) if m.message["List-Unsubscribe"]][-1]
    one_click = path_of(urls_of(message).unsubscribe_header)
    public = app.test_client(use_cookies=False)
    assert public.post(one_click, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    drain(app)
    unsubscribed = _data(receiver, "contact.unsubscribed")
    assert unsubscribed and {d["email"] for d in unsubscribed} == {ZOE}
    with app.app_context():
        ada = core_db.session.scalars(select(Contact).where(Contact.email == ADA)).one()
        subscribers.unsubscribe_contact(tenant.account_id, ada.id, None, "manual")
    drain(app)
    everything = [d for d in _data(receiver, "contact.unsubscribed") if d["email"] == ADA]
    assert any(d["all_lists"] for d in everything)


def test_erased_carries_no_address_and_earlier_payloads_are_scrubbed(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    tenant, _secret = _tenant_with_endpoint(app, receiver.url, individual=True)
    _send(app, smtp_sink, tenant, [ZOE])
    with app.app_context():
        zoe = core_db.session.scalars(select(Contact).where(Contact.email == ZOE)).one()
        contact_id = zoe.id
        stored = [e.payload for e in core_db.session.scalars(select(WebhookEvent))]
        assert any(p["data"].get("email") == ZOE for p in stored)
        privacy.erase_contact(tenant.account_id, contact_id, tenant.user_id)
        core_db.session.commit()
    drain(app)
    [erased] = receiver.of_type("contact.erased")
    assert erased.json["data"] == {"contact_id": contact_id}
    assert b"@" not in erased.body
    with app.app_context():
        dump = json.dumps([e.payload for e in core_db.session.scalars(select(WebhookEvent))])
    assert "xn--" not in dump and "mple.org" not in dump
    assert "Zo\\u00eb" not in dump and "Zoë" not in dump


def test_import_finished_and_data_request_fulfilled(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    tenant, _secret = _tenant_with_endpoint(app, receiver.url, individual=False)
    with app.app_context():
        list_id = make_list_with_contacts(tenant, [ADA])
        upload = io.BytesIO(f"email,name\n{ZOE},Zoë\nnot-an-address,X\n".encode())
        job = subscribers.create_import(tenant.account_id, list_id, upload, "people.csv", False)
        subscribers.start_import(tenant.account_id, job.id, {"0": "email", "1": "name"}, False)
        core_db.session.remove()
    drain(app)
    [done] = _data(receiver, "import.finished")
    assert done["import_id"] == job.id and done["status"] == "done"
    assert (done["created"], done["errors"]) == (1, 1)
    assert "people.csv" not in json.dumps(done)

    client = app.test_client()
    assert submit(client, ADA, "restrict").status_code == 200
    confirm = link_in(smtp_sink, ADA, "/privacy/confirm/")
    assert client.post(confirm).status_code == 200
    drain(app)
    [fulfilled] = receiver.of_type("data_request.fulfilled")
    assert fulfilled.json["data"]["kind"] == "restrict"
    assert fulfilled.json["data"]["contacts"] == 1
    assert b"@" not in fulfilled.body
