"""Tracking choices (issue 13): per-campaign open and click switches, and a recipient's own
"do not track my opens and clicks" from the preference centre. Through the public interfaces:
the compose form, the received email, the public tracking endpoints and what the store keeps.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from campaigns import services as campaigns
from campaigns.models import Campaign
from core import db as core_db
from core.db import utcnow
from core.errors import ValidationError
from subscribers.models import ConsentRecord, Contact, Subscription
from tests.conftest import drain
from tests.factories import login, make_list_with_contacts, make_tenant
from tests.mail_parsing import MessageUrls, path_of, urls_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BODY, BROWSER_UA, events, send_campaign

RECIPIENTS = ["ada@example.org", "bob@example.org"]


def _later() -> Any:
    """A minute after delivery: hits are no longer "within seconds of delivery"."""
    return time_machine.travel(utcnow() + timedelta(minutes=1), tick=True)


def _preferences_path(text_or_html: str) -> str:
    match = re.search(r"(https?://[^\s\"<>]*/preferences/[^\s\"<>]+)", text_or_html)
    assert match, "no preference-centre link in the message"
    return path_of(match.group(1))


def _hit_everything(app: Flask, urls: Any) -> None:
    public = app.test_client(use_cookies=False)
    env = {"REMOTE_ADDR": "203.0.113.77"}
    with _later():
        assert urls.beacon is not None
        assert public.get(path_of(urls.beacon), headers={"User-Agent": BROWSER_UA}).status_code
        for click in urls.clicks:
            response = public.get(
                path_of(click), headers={"User-Agent": BROWSER_UA}, environ_base=env
            )
            assert response.status_code == 302  # a click always lands
    drain(app)


def test_a_recipient_who_turns_tracking_off_stays_subscribed_and_records_nothing(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    ada, bob = (sent.urls[address] for address in RECIPIENTS)
    public = app.test_client()
    path = _preferences_path(ada.html)
    page = public.get(path).get_data(as_text=True)
    assert 'id="tracking"' in page and "checked" in page.split('id="tracking"')[1][:40]
    answer = public.post(path, data={"action": "tracking"})  # the box unticked
    assert answer.status_code == 200
    assert "no longer recorded" in answer.get_data(as_text=True)
    assert "checked" not in public.get(path).get_data(as_text=True).split('id="tracking"')[1][:40]

    _hit_everything(app, ada)
    assert events(app) == []  # not an identified event, not a count
    _hit_everything(app, bob)  # another recipient of the same campaign is still tracked
    stored = events(app)
    assert {e.kind for e in stored} == {"open", "click"}
    assert all(e.message_id is not None for e in stored)

    with app.app_context():
        contact = core_db.session.scalars(
            select(Contact).where(Contact.email == RECIPIENTS[0])
        ).one()
        status = core_db.session.scalars(
            select(Subscription.status).where(Subscription.contact_id == contact.id)
        ).one()
        assert status == "subscribed"  # still on the list
        actions = core_db.session.scalars(
            select(ConsentRecord.action).where(ConsentRecord.contact_id == contact.id)
        ).all()
        assert "tracking_refused" in actions

    # Turned back on: tracked again.
    public.post(path, data={"action": "tracking", "tracking": "on"})
    before = len(events(app))
    _hit_everything(app, ada)
    assert len(events(app)) > before


def _compose_and_send(
    app: Flask, client: Any, smtp_sink: SMTPSink, **switches: str
) -> tuple[str, MessageUrls]:
    """Compose a campaign through the form with the given boxes ticked, send it to one
    recipient; the campaign page's text and the received message's URLs."""
    with app.app_context():
        tenant = make_tenant(email="owner@shop.example")
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        list_id = make_list_with_contacts(tenant, RECIPIENTS[:1])
    login(client, "owner@shop.example")
    form = {
        "name": "Quiet",
        "subject": "Tracking",
        "from_name": "Shop",
        "from_email": "news@shop.example",
        "list_ids": list_id,
        "html_body": BODY,
        **switches,
    }
    saved = client.post("/campaigns/new", data=form)
    assert saved.status_code == 302
    detail = client.get(saved.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        campaign = core_db.session.scalars(select(Campaign)).one()
        campaigns.start(tenant.account_id, campaign.id)
        core_db.session.remove()
    drain(app)
    (received,) = smtp_sink.wait_for(1)
    return detail, urls_of(received.message)


def test_the_compose_form_offers_both_switches_ticked(app: Flask, client: Any) -> None:
    with app.app_context():
        make_tenant(email="owner@shop.example")
    login(client, "owner@shop.example")
    new = client.get("/campaigns/new").get_data(as_text=True)
    for name in ("track_opens", "track_clicks"):
        assert re.search(rf'checked[^>]*id="{name}"|id="{name}"[^>]*checked', new), name


def test_with_both_switches_off_no_pixel_and_links_not_rewritten(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    detail, urls = _compose_and_send(app, client, smtp_sink)  # both boxes unticked
    assert re.search(r"opens <strong>off</strong>.*clicks <strong>off</strong>", detail)
    assert urls.beacon is None  # no pixel
    assert urls.clicks == []  # links not rewritten
    assert 'href="https://shop.example/b"' in urls.html
    assert "https://shop.example/b" in urls.text
    assert "/h/" not in urls.html  # no honeypot link either


def test_with_opens_off_and_clicks_on_links_are_tracked_without_a_pixel(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    detail, urls = _compose_and_send(app, client, smtp_sink, track_clicks="y")
    assert re.search(r"opens <strong>off</strong>.*clicks <strong>on</strong>", detail)
    assert urls.beacon is None and len(urls.clicks) == 3


def test_with_both_switches_on_pixel_and_tracked_links(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    detail, urls = _compose_and_send(app, client, smtp_sink, track_opens="y", track_clicks="y")
    assert re.search(r"opens <strong>on</strong>.*clicks <strong>on</strong>", detail)
    assert urls.beacon is not None and len(urls.clicks) == 3


def test_the_service_refuses_a_switch_that_is_not_on_or_off(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant(email="owner@shop.example")
        list_id = make_list_with_contacts(tenant, RECIPIENTS[:1])
        with pytest.raises(ValidationError) as refused:
            campaigns.save_campaign(
                tenant.account_id,
                campaign_id=None,
                name="x",
                subject="x",
                from_name="Shop",
                from_email="news@shop.example",
                html_body=BODY,
                list_id=list_id,
                track_opens="no",  # type: ignore[arg-type]
            )
        assert refused.value.field == "track_opens"
        core_db.session.rollback()
        assert core_db.session.scalars(select(Campaign)).all() == []
