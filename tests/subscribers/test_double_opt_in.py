"""The public sign-up form with double opt-in: confirm, expired, reused and tampered links."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from flask import Flask
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Message
from core import db as core_db
from core.db import utcnow
from subscribers.models import ConsentRecord, Contact, Subscription
from tests.conftest import drain
from tests.factories import make_campaign
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import confirm_link, signup_key, tenant_with_list


def _status(app: Flask, email: str) -> str | None:
    with app.app_context():
        return core_db.session.scalar(
            select(Subscription.status)
            .join(Contact, Contact.id == Subscription.contact_id)
            .where(Contact.email == email)
        )


def test_sign_up_then_confirm(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    assert client.get(f"/subscribe/{key}").status_code == 200
    response = client.post(f"/subscribe/{key}", data={"email": " Reader@Example.ORG ", "name": "R"})
    assert response.status_code == 200
    assert "Check your inbox" in response.get_data(as_text=True)
    assert _status(app, "Reader@example.org") == "unconfirmed"
    drain(app)
    link = confirm_link(smtp_sink, "Reader@example.org")
    assert "Reader" not in link and "example" not in link  # ids only in the token

    # GET (a link scanner) confirms nothing.
    page = client.get(link)
    assert page.status_code == 200 and "Yes, subscribe me" in page.get_data(as_text=True)
    assert _status(app, "Reader@example.org") == "unconfirmed"

    done = client.post(link)
    assert done.status_code == 200 and "You are subscribed" in done.get_data(as_text=True)
    assert _status(app, "Reader@example.org") == "subscribed"
    with app.app_context():
        actions = core_db.session.scalars(
            select(ConsentRecord.action).order_by(ConsentRecord.id)
        ).all()
    assert actions == ["signup_requested", "subscribed"]


def test_nothing_is_sent_before_confirming(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    app.test_client().post(f"/subscribe/{key}", data={"email": "wait@example.org"})
    drain(app)
    smtp_sink.clear()
    with app.app_context():
        campaign_id = make_campaign(tenant, list_id)
        campaign_services.start(tenant.account_id, campaign_id)
        assert core_db.session.scalars(select(Message)).all() == []
    drain(app)
    assert smtp_sink.to("wait@example.org") == []


def test_expired_link_is_refused(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    with time_machine.travel(utcnow() - timedelta(days=3), tick=False):
        client.post(f"/subscribe/{key}", data={"email": "late@example.org"})
        drain(app)
    link = confirm_link(smtp_sink, "late@example.org")
    for response in (client.get(link), client.post(link)):
        assert response.status_code == 410
        assert "expired" in response.get_data(as_text=True)
    assert _status(app, "late@example.org") == "unconfirmed"


def test_reused_link_is_refused(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    client.post(f"/subscribe/{key}", data={"email": "twice@example.org"})
    drain(app)
    link = confirm_link(smtp_sink, "twice@example.org")
    assert client.post(link).status_code == 200
    again = client.post(link)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    with app.app_context():
        count = len(core_db.session.scalars(select(ConsentRecord)).all())
    assert count == 2  # the second use recorded nothing


def test_tampered_link_is_refused(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    client.post(f"/subscribe/{key}", data={"email": "tamper@example.org"})
    drain(app)
    link = confirm_link(smtp_sink, "tamper@example.org")
    token = link.rsplit("/", 1)[1]
    payload, rest = token.split(".", 1)
    forged = link.replace(
        token, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + rest
    )
    for bad in (forged, link + "x", "/subscribe/confirm/not-a-token"):
        assert client.post(bad).status_code == 404
        assert client.get(bad).status_code == 404
    # A preferences token does not work as a confirmation token.
    from core.signing import Purpose, sign_timed

    with app.app_context():
        other = sign_timed(Purpose.PREFERENCES, [1])
    assert client.post(f"/subscribe/confirm/{other}").status_code == 404
    assert _status(app, "tamper@example.org") == "unconfirmed"


def test_invalid_address_shows_inline_error_and_keeps_input(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    response = app.test_client().post(
        f"/subscribe/{key}", data={"email": "not an address", "name": "Kept"}
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "not a valid email address" in body and 'value="Kept"' in body


def test_form_is_off_until_turned_on_and_answers_404(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    with app.app_context():
        from subscribers import services

        services.set_signup_form(tenant.account_id, list_id, False)
    assert app.test_client().get(f"/subscribe/{key}").status_code == 404


def test_embedded_form_posts_without_csrf(app_factory: object, smtp_sink: SMTPSink) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)  # type: ignore[operator]
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    response = client.post(f"/subscribe/{key}/embed", data={"email": "embed@example.org"})
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    # The hosted form itself requires its CSRF token.
    assert client.post(f"/subscribe/{key}", data={"email": "x@example.org"}).status_code == 400
    # The honeypot swallows bots silently.
    client.post(f"/subscribe/{key}/embed", data={"email": "bot@example.org", "website": "x"})
    drain(app)
    assert smtp_sink.to("embed@example.org") and not smtp_sink.to("bot@example.org")


def test_repeated_sign_up_sends_one_confirmation(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    for _ in range(3):
        client.post(f"/subscribe/{key}", data={"email": "spam-me@example.org"})
    drain(app)
    assert len(smtp_sink.to("spam-me@example.org")) == 1
