"""Transactional messages: one triggered message to one address through the campaigns' pipeline,
checked on what the real SMTP sink received: DKIM-signed, personalised, untracked; refused for
restricted, objecting, erased and suppressed addresses (not for a marketing unsubscribe);
idempotent; deferrals retried; refusals failed with their reason; bounces found; accounts
kept apart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dkim
import pytest
from flask import Flask
from sqlalchemy import func, select

from campaigns import bounces, queries, senders, template_library
from campaigns.models import TransactionalMessage
from campaigns.sending import reconciler
from campaigns.sending import transactional as tx_delivery
from campaigns.transactional import RecipientRefusedError, send_transactional
from core import db as core_db
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from privacy import services as privacy
from subscribers import services as subscribers
from subscribers.suppression import suppress, suppression_reason
from tests.campaigns.helpers import RETURN_PATH, parse
from tests.conftest import drain
from tests.factories import Tenant, make_list_with_contacts, make_tenant
from tests.privacy.helpers import link_in, submit
from tests.smtp_sink import SMTPSink

HTML = (
    "<html><body><p>Hello {{ contact.first_name }}, order {{ data.order }} is paid: "
    "{{ data.total }}.</p>"
    '<p><a href="https://shop.example/orders/{{ data.order }}">Your order</a> · '
    '<a href="https://shop.example/help">Help</a></p></body></html>'
)


def _tenant(email: str = "owner@shop.example", name: str = "Shop") -> Tenant:
    tenant = make_tenant(email=email, name=name)
    senders.add_sender(tenant.account_id, "orders@shop.example", "Shop", verified=True)
    return tenant


def _send(tenant: Tenant, to: str, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "from_email": "orders@shop.example",
        "from_name": "Shop",
        "subject": "Receipt for order {{ data.order }}",
        "html": HTML,
        "data": {"order": "A-17", "total": "12,50 €"},
    }
    values.update(overrides)
    return send_transactional(tenant.account_id, to, **values)


def _row(message_id: int) -> TransactionalMessage:
    core_db.session.expire_all()
    row = core_db.session.get(TransactionalMessage, message_id)
    assert row is not None
    return row


def _count() -> int:
    return int(core_db.session.scalar(select(func.count()).select_from(TransactionalMessage)) or 0)


@contextmanager
def _worker_held(app: Flask, lose_queued: bool = False) -> Iterator[None]:
    """The app's in-process worker takes no job meanwhile; with ``lose_queued`` the jobs
    enqueued meanwhile are lost (a worker killed, a broker restarted without persistence)."""
    queue = app.extensions["queue"]
    queue.start_worker()
    queue.worker.pause()
    try:
        yield
        if lose_queued:
            queue.broker.flush_all()
    finally:
        queue.worker.resume()


@pytest.fixture
def tx_app(app_factory: Any) -> Any:
    app: Flask = app_factory(RETURN_PATH=RETURN_PATH, SEND_RETRY_BASE_SECONDS=0.05)
    with app.app_context():
        yield app


def test_sent_personalised_dkim_signed_and_untracked(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    key = senders.create_dkim_key(tenant.account_id, "shop.example", "s2026")
    record = senders.dkim_record(key).encode()
    # Not a contact of the account: allowed, with the name given.
    message_id = _send(tenant, "zoë@example.org", to_name="Zoë Ñúñez")
    assert queries.transactional_status(tenant.account_id, message_id).status == "queued"
    drain(tx_app)
    received = smtp_sink.wait_for(1)[0]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"s2026._domainkey.shop.example." else b""

    assert dkim.verify(received.data, dnsfunc=dns)
    message = received.utf8_message
    assert str(message["Subject"]) == "Receipt for order A-17"
    assert message["Auto-Submitted"] == "auto-generated"
    # Not marketing: no unsubscribe headers, no footer; no beacon, links as written.
    assert message["List-Unsubscribe"] is None
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Hello Zoë, order A-17 is paid: 12,50 €." in html
    assert 'href="https://shop.example/orders/A-17"' in html
    assert 'href="https://shop.example/help"' in html
    assert "/o/" not in html and "/c/" not in html and "<img" not in html
    assert "Unsubscribe" not in html and "Unsubscribe" not in text
    assert "A-17" in text
    # The Message-ID and the VERP envelope sender name the transactional row.
    assert str(message["Message-ID"]).startswith(f"<t{message_id}.")
    assert received.envelope_from.startswith(f"bounces+t{message_id}-")
    state = queries.transactional_status(tenant.account_id, message_id)
    assert (state.status, state.reason, state.attempts) == ("sent", None, 1)
    assert state.sent_at is not None
    # The content does not stay once it is sent.
    row = _row(message_id)
    assert (row.subject, row.html_body, row.data) == ("", "", None)


def test_a_stored_template_with_the_contacts_own_data(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    list_id = make_list_with_contacts(tenant, [])
    subscribers.add_contact_to_list(
        tenant.account_id, list_id, "ada@example.org", "Ada Lovelace", {"tier": "gold"}
    )
    template = template_library.save_template(
        tenant.account_id,
        template_id=None,
        name="Welcome",
        subject="Welcome {{ contact.first_name }}",
        html_body="<html><body><p>Your tier: {{ contact.attributes.tier }}, code "
        "{{ data.code }}</p></body></html>",
    )
    message_id = send_transactional(
        tenant.account_id,
        "ADA@example.org",
        from_email="orders@shop.example",
        template_id=template.id,
        data={"code": "X1"},
    )
    drain(tx_app)
    received = smtp_sink.wait_for(1)[0].message
    assert str(received["Subject"]) == "Welcome Ada"
    assert "Your tier: gold, code X1" in received.get_body(("html",)).get_content()
    assert _row(message_id).contact_id is not None


def test_tracking_is_off_and_cannot_be_asked_for(tx_app: Flask) -> None:
    tenant = _tenant()
    with pytest.raises(ValidationError, match="not tracked"):
        _send(tenant, "a@example.org", track_opens=True)
    with pytest.raises(ValidationError, match="not tracked"):
        _send(tenant, "a@example.org", track_clicks=True)
    assert _count() == 0


def test_bad_requests_are_refused_with_their_reason(tx_app: Flask) -> None:
    tenant = _tenant()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"html": "<p>{{ data.x </p>"}, "Personalisation error"),
        ({"subject": ""}, "subject"),
        ({"html": ""}, "HTML body"),
        ({"subject": "two\r\nlines"}, "one line"),
        ({"from_email": "stranger@elsewhere.example"}, "not a verified sender"),
    ]
    tx_app.config["REQUIRE_VERIFIED_SENDER"] = True
    for overrides, reason in cases:
        with pytest.raises(ValidationError, match=reason):
            _send(tenant, "a@example.org", **overrides)
    with pytest.raises(ValidationError):
        _send(tenant, "not an address")
    other = _tenant("owner@other.example", "Other")
    theirs = template_library.save_template(
        other.account_id, template_id=None, name="T", subject="S", html_body="<p>x</p>"
    )
    with pytest.raises(NotFoundError):
        send_transactional(
            tenant.account_id,
            "a@example.org",
            from_email="orders@shop.example",
            template_id=theirs.id,
        )
    assert _count() == 0


def test_refused_for_restricted_objecting_erased_and_suppressed_addresses(
    tx_app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant()
    addresses = ["restricted@example.org", "erased@example.org", "bounced@example.org"]
    list_id = make_list_with_contacts(tenant, addresses)
    contacts = {
        email: subscribers.add_contact_to_list(tenant.account_id, list_id, email).id
        for email in addresses
    }
    privacy.restrict_contact(tenant.account_id, contacts["restricted@example.org"], tenant.user_id)
    privacy.erase_contact(tenant.account_id, contacts["erased@example.org"], tenant.user_id)
    suppress(tenant.account_id, "bounced@example.org", "hard_bounce")
    suppress(tenant.account_id, "hurt@example.org", "complaint")
    core_db.session.commit()
    subscribers.block_address("blocked@example.org")
    core_db.session.commit()
    expected = {
        "restricted@example.org": "restricted",
        "erased@example.org": "erased",
        "bounced@example.org": "hard-bounced",
        "hurt@example.org": "complained",
        "blocked@example.org": "blocked",
    }
    for address, reason in expected.items():
        with pytest.raises(RecipientRefusedError, match=reason) as refused:
            _send(tenant, address)
        assert address not in str(refused.value)
    assert _count() == 0  # nothing stored: an erased address is not written down again
    assert smtp_sink.messages == []


def test_an_objection_stops_receipts_a_marketing_unsubscribe_or_withdrawal_does_not(
    tx_app: Flask, smtp_sink: SMTPSink
) -> None:
    client = tx_app.test_client()
    tenant = _tenant()
    people = ["objects@example.org", "unsubscribed@example.org", "withdraws@example.org"]
    list_id = make_list_with_contacts(tenant, people)
    contact = subscribers.add_contact_to_list(
        tenant.account_id, list_id, "unsubscribed@example.org"
    )
    subscribers.unsubscribe_contact(tenant.account_id, contact.id, None, "preferences")
    assert suppression_reason(tenant.account_id, "unsubscribed@example.org") == "unsubscribed"
    for address, kind in (("objects@example.org", "object"), ("withdraws@example.org", "withdraw")):
        submit(client, address, kind)
        assert client.post(link_in(smtp_sink, address, "/privacy/confirm/")).status_code == 200
    # An objection reaches addresses the account does not hold, too (platform-wide).
    submit(client, "stranger@example.org", "object")
    path = link_in(smtp_sink, "stranger@example.org", "/privacy/confirm/")
    assert client.post(path).status_code == 200
    smtp_sink.clear()

    for address in ("objects@example.org", "stranger@example.org"):
        with pytest.raises(RecipientRefusedError, match="objected"):
            _send(tenant, address)
    receipts = [_send(tenant, a) for a in ("unsubscribed@example.org", "withdraws@example.org")]
    drain(tx_app)
    assert sorted(r.recipients[0] for r in smtp_sink.wait_for(2)) == [
        "unsubscribed@example.org",
        "withdraws@example.org",
    ]
    assert [queries.transactional_status(tenant.account_id, i).status for i in receipts] == [
        "sent",
        "sent",
    ]


def test_a_restriction_after_the_request_stops_the_queued_message(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory()
    with app.app_context():
        tenant = _tenant()
        list_id = make_list_with_contacts(tenant, ["late@example.org"])
        contact = subscribers.add_contact_to_list(tenant.account_id, list_id, "late@example.org")
        with _worker_held(app):
            message_id = _send(tenant, "late@example.org")
            privacy.restrict_contact(tenant.account_id, contact.id, tenant.user_id)
        drain(app)
        state = queries.transactional_status(tenant.account_id, message_id)
        assert (state.status, state.reason) == (
            "failed",
            "not sent: the address's processing is restricted",
        )
    assert smtp_sink.messages == []


def test_an_idempotent_retry_returns_the_same_id_and_sends_once(
    tx_app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant()
    first = _send(tenant, "once@example.org", idempotency_key="order-A-17")
    again = _send(tenant, "once@example.org", idempotency_key="order-A-17")
    drain(tx_app)
    after_sending = _send(tenant, "once@example.org", idempotency_key="order-A-17")
    drain(tx_app)
    assert first == again == after_sending
    assert len(smtp_sink.wait_for(1)) == 1
    time.sleep(0.2)
    assert len(smtp_sink.to("once@example.org")) == 1
    with pytest.raises(ValidationError, match="another message"):
        _send(tenant, "other@example.org", idempotency_key="order-A-17")
    # Keys are per account.
    other = _tenant("owner@other.example", "Other")
    assert _send(other, "once@example.org", idempotency_key="order-A-17") != first


def test_a_deferral_is_retried_then_sent(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    smtp_sink.reply_for("slow@example.org", "451 4.7.1 try again later")
    message_id = _send(tenant, "slow@example.org")
    drain(tx_app)
    assert len(smtp_sink.wait_for(1)) == 1
    state = queries.transactional_status(tenant.account_id, message_id)
    assert (state.status, state.attempts) == ("sent", 2)


def test_deferrals_give_up_after_the_limit(app_factory: Any, smtp_sink: SMTPSink) -> None:
    app = app_factory(SEND_RETRY_BASE_SECONDS=0.05, SEND_MAX_ATTEMPTS=3)
    smtp_sink.reply_for("full@example.org", *["452 4.2.2 mailbox full"] * 3)
    with app.app_context():
        tenant = _tenant()
        message_id = _send(tenant, "full@example.org")
        drain(app)
        state = queries.transactional_status(tenant.account_id, message_id)
        assert (state.status, state.attempts) == ("failed", 3)
        assert state.reason == "gave up after 3 attempts: 452 4.2.2"
    assert smtp_sink.messages == []


def test_a_refusal_fails_with_its_reason_and_suppresses(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    smtp_sink.reply_for("nobody@example.org", "550 5.1.1 no such user here")
    message_id = _send(tenant, "nobody@example.org")
    drain(tx_app)
    state = queries.transactional_status(tenant.account_id, message_id)
    assert (state.status, state.reason) == ("failed", "refused by the receiving server (550 5.1.1)")
    assert state.failed_at is not None
    assert suppression_reason(tenant.account_id, "nobody@example.org") == "hard_bounce"
    with pytest.raises(RecipientRefusedError, match="hard-bounced"):
        _send(tenant, "nobody@example.org")


def test_a_personalisation_error_fails_that_message_alone(
    tx_app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant()
    broken = _send(tenant, "a@example.org", html="<p>{{ 10 // data.count }}</p>", data={"count": 0})
    fine = _send(tenant, "b@example.org")
    drain(tx_app)
    state = queries.transactional_status(tenant.account_id, broken)
    assert state.status == "failed" and "ZeroDivisionError" in (state.reason or "")
    assert queries.transactional_status(tenant.account_id, fine).status == "sent"
    assert [r.recipients[0] for r in smtp_sink.wait_for(1)] == ["b@example.org"]


@pytest.mark.parametrize("way", ["dsn", "webhook"])
def test_a_bounce_marks_the_message_bounced(
    app_factory: Any, smtp_sink: SMTPSink, way: str
) -> None:
    app = app_factory(RETURN_PATH=RETURN_PATH, BOUNCE_WEBHOOK_SECRET="webhook-secret")
    with app.app_context():
        tenant = _tenant()
        message_id = _send(tenant, "gone@example.org")
        drain(app)
        received = smtp_sink.wait_for(1)[0]
        header = str(received.message["Message-ID"])
        if way == "dsn":
            report = _dsn(received.envelope_from)  # found by its VERP address
            assert bounces.record(bounces.parse_report(report)) == 1
        else:
            body = (
                '{"events": [{"type": "hard", "message_id": "' + header + '", "status": "5.1.1"}]}'
            ).encode()
            signature = bounces.generic_signature("webhook-secret", body)
            assert bounces.handle_generic(body, signature) == 1
        state = queries.transactional_status(tenant.account_id, message_id)
        assert (state.status, state.bounce_kind) == ("bounced", "hard")
        assert state.bounced_at is not None
        assert suppression_reason(tenant.account_id, "gone@example.org") == "hard_bounce"
        # A forged Message-ID names nothing.
        forged = header.replace(f"<t{message_id}.", f"<t{message_id + 1}.")
        assert bounces.find_transactional(forged, None) is None


def _dsn(verp: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\r\n"
        f"To: {verp}\r\n"
        "Subject: Undelivered Mail\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Subject: Receipt\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_a_killed_worker_is_recovered_at_most_once(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    with _worker_held(tx_app, lose_queued=True):
        before_smtp = _send(tenant, "a@example.org")
        during_smtp = _send(tenant, "b@example.org")
        # Two workers claimed them and died: one before its SMTP exchange, one during it.
        for message_id, started in ((before_smtp, False), (during_smtp, True)):
            row = _row(message_id)
            row.claim_token, row.claimed_at = f"dead{message_id}", utcnow()
            row.smtp_started_at = utcnow() if started else None
            core_db.session.commit()
    assert tx_delivery.recover(utcnow()) == (0, 0)  # claims within their lease are left alone
    # The lease ran out (SEND_CLAIM_TIMEOUT): the reconciler takes them for dead workers'.
    for message_id in (before_smtp, during_smtp):
        _row(message_id).claimed_at = utcnow() - timedelta(seconds=60)
        core_db.session.commit()
    report = reconciler.reconcile()
    assert (report.transactional_interrupted, report.transactional_requeued) == (1, 1)
    drain(tx_app)
    assert [r.recipients[0] for r in smtp_sink.wait_for(1)] == ["a@example.org"]
    interrupted = queries.transactional_status(tenant.account_id, during_smtp)
    assert interrupted.status == "failed" and (interrupted.reason or "").startswith("interrupted")
    assert queries.transactional_status(tenant.account_id, before_smtp).status == "sent"
    time.sleep(0.2)
    assert len(smtp_sink.messages) == 1  # never resent


def test_a_lost_queue_message_is_found_again(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    with _worker_held(tx_app, lose_queued=True):
        message_id = _send(tenant, "lost@example.org")
    assert tx_delivery.recover(utcnow()) == (0, 0)  # not yet: it may be waiting in line
    _row(message_id).due_at = utcnow() - timedelta(seconds=60)
    core_db.session.commit()
    assert tx_delivery.recover(utcnow()) == (0, 1)
    drain(tx_app)
    assert queries.transactional_status(tenant.account_id, message_id).status == "sent"
    assert len(smtp_sink.wait_for(1)) == 1


def test_accounts_are_kept_apart(tx_app: Flask) -> None:
    tenant = _tenant()
    other = _tenant("owner@other.example", "Other")
    mine = _send(tenant, "a@example.org")
    with pytest.raises(NotFoundError):
        queries.transactional_status(other.account_id, mine)
    assert [s.id for s in queries.recent_transactional(tenant.account_id)] == [mine]
    assert queries.recent_transactional(other.account_id) == []
    # Another account's suppression does not stop this one's receipts.
    suppress(other.account_id, "b@example.org", "manual")
    core_db.session.commit()
    assert _send(tenant, "b@example.org") > mine
    with pytest.raises(RecipientRefusedError):
        _send(other, "b@example.org")


def test_the_content_is_parsed_as_one_message(tx_app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant()
    _send(tenant, "x@example.org", text="Plain {{ data.order }}")
    drain(tx_app)
    message = parse(smtp_sink.wait_for(1)[0].data)
    assert message.get_body(("plain",)).get_content().strip() == "Plain A-17"
