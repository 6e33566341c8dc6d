"""Sending: DKIM, audience, per-message checks, SMTP outcomes, throttles, schedule, pause,
resume, cancel, and recovery by the reconciler."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import dkim
import pytest
import time_machine
from sqlalchemy import func, select, update

from campaigns import queries, senders, services, throttle
from campaigns.models import Campaign, Message
from campaigns.sending import delivery, reconciler
from core.db import utcnow
from core.errors import ValidationError
from subscribers import services as subscribers
from subscribers.suppression import suppression_reason
from tests.campaigns.helpers import campaign_with, html_of
from tests.conftest import drain
from tests.factories import login
from tests.smtp_sink import SMTPSink
from tracking import urls


def _status(db: Any, campaign_id: int) -> str:
    db.expire_all()
    return str(db.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


def _message_statuses(db: Any, campaign_id: int) -> dict[str, int]:
    db.expire_all()
    return dict(
        db.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.status)
        ).all()
    )


def test_dkim_signature_verifies_on_the_received_message(
    app: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    setup = campaign_with(["ada@example.org"])
    key = senders.create_dkim_key(setup.tenant.account_id, "shop.example", "s2026")
    record = senders.dkim_record(key).encode()
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record if name == b"s2026._domainkey.shop.example." else b""

    assert dkim.verify(received.data, dnsfunc=dns)
    assert looked_up == [b"s2026._domainkey.shop.example."]
    signature = str(received.message["DKIM-Signature"]).replace(" ", "").replace("\n", "")
    signed = signature.split("h=")[1].split(";")[0].lower().split(":")
    for header in ("from", "to", "subject", "date", "list-unsubscribe", "list-unsubscribe-post"):
        assert header in signed
    # Tampering with a signed header breaks it.
    tampered = received.data.replace(b"Subject: Hello", b"Subject: Jello", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_every_message_has_footer_unsubscribe_headers_and_message_id(
    app: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    setup = campaign_with(["ada@example.org"])
    services.save_campaign(
        setup.tenant.account_id,
        campaign_id=setup.campaign_id,
        name="x",
        subject="Hi",
        from_name="Shop",
        from_email="news@shop.example",
        reply_to="help@shop.example",
        html_body="<html><body><p>x</p></body></html>",
        list_ids=[setup.list_id],
    )
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    message = received.message
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(message["List-Unsubscribe"]).startswith("<http://localhost/u/")
    assert str(message["Reply-To"]) == "help@shop.example"
    stored = db.scalar(select(Message.smtp_message_id))
    assert str(message["Message-ID"]) == stored and stored.endswith("@shop.example>")
    assert "1 Main St" in html_of(received.data)
    assert ">Unsubscribe</a>" in html_of(received.data)


def test_audience_of_several_lists_is_deduplicated(app: Any, db: Any, smtp_sink: SMTPSink) -> None:
    setup = campaign_with(["ada@example.org", "bob@example.org"])
    second = subscribers.create_list(setup.tenant.account_id, "Second")
    for address in ("ada@example.org", "cy@example.org"):
        subscribers.add_contact_to_list(setup.tenant.account_id, second.id, address)
    campaign = services.get_campaign(setup.tenant.account_id, setup.campaign_id)
    services.save_campaign(
        setup.tenant.account_id,
        campaign_id=campaign.id,
        name=campaign.name,
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        html_body=campaign.html_body,
        list_ids=[setup.list_id, second.id],
    )
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(3)
    assert sorted(r.recipients[0] for r in received) == [
        "ada@example.org",
        "bob@example.org",
        "cy@example.org",
    ]
    assert _status(db, setup.campaign_id) == "sent"


def test_unsubscribe_arriving_mid_send_stops_that_message(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(SEND_BATCH_SIZE=1, SEND_CONNECTIONS=1)
    client = app.test_client()
    with app.app_context():
        from core import db

        setup = campaign_with(["a@example.org", "b@example.org", "c@example.org"])
        services.start(setup.tenant.account_id, setup.campaign_id)
        assert delivery.send_batch(setup.campaign_id, claims=1) == 1  # a worker sent the first one
        later = db.session.scalar(
            select(Message.id)
            .where(Message.status == "pending")
            .order_by(Message.id.desc())
            .limit(1)
        )
        assert later is not None
        token_url = urls.unsubscribe_url(later)
        db.session.commit()
    response = client.post(
        token_url.removeprefix("http://localhost"),
        data={"List-Unsubscribe": "One-Click"},
    )
    assert response.status_code == 200
    drain(app)
    with app.app_context():
        from core import db

        statuses = _message_statuses(db.session, setup.campaign_id)
        skipped = db.session.scalar(select(Message.error).where(Message.id == later))
    assert statuses == {"sent": 2, "skipped": 1}
    assert skipped == "no longer in the audience"
    assert "c@example.org" not in [r.recipients[0] for r in smtp_sink.messages]


def test_suppressed_address_is_skipped_at_send_time(app: Any, db: Any, smtp_sink: SMTPSink) -> None:
    setup = campaign_with(["keep@example.org", "gone@example.org"])
    services.start(setup.tenant.account_id, setup.campaign_id)
    from subscribers.suppression import suppress

    suppress(setup.tenant.account_id, "gone@example.org", "complaint")
    db.commit()
    drain(app)
    assert [r.recipients[0] for r in smtp_sink.wait_for(1)] == ["keep@example.org"]
    assert _message_statuses(db, setup.campaign_id) == {"sent": 1, "skipped": 1}


def test_4xx_is_retried_with_backoff_then_delivered(app_factory: Any, smtp_sink: SMTPSink) -> None:
    app = app_factory(SEND_RETRY_BASE_SECONDS=0.2)
    smtp_sink.reply_for("slow@example.org", "451 4.7.1 try again later")
    with app.app_context():
        from core import db

        setup = campaign_with(["slow@example.org", "fast@example.org"])
        services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    received = smtp_sink.wait_for(2)
    assert sorted(r.recipients[0] for r in received) == ["fast@example.org", "slow@example.org"]
    with app.app_context():
        from core import db

        slow = db.session.scalar(
            select(Message).where(Message.status == "sent", Message.attempts == 1)
        )
        assert slow is not None
        assert _status(db.session, setup.campaign_id) == "sent"


def test_4xx_gives_up_after_the_limit_as_a_soft_bounce(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(SEND_RETRY_BASE_SECONDS=0.05, SEND_MAX_ATTEMPTS=3)
    smtp_sink.reply_for("full@example.org", *["452 4.2.2 mailbox full"] * 3)
    with app.app_context():
        from core import db

        setup = campaign_with(["full@example.org"])
        services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    with app.app_context():
        from core import db

        row = db.session.scalar(select(Message))
        assert row is not None
        assert (row.status, row.attempts, row.bounce_kind) == ("failed", 3, "soft")
        assert queries.bounce_counts(setup.campaign_id) == {"hard": 0, "soft": 1, "complaint": 0}
        assert suppression_reason(setup.tenant.account_id, "full@example.org") is None
    assert smtp_sink.messages == []


def test_5xx_fails_as_a_hard_bounce_and_suppresses(app: Any, db: Any, smtp_sink: SMTPSink) -> None:
    smtp_sink.reply_for("nobody@example.org", "550 5.1.1 no such user here")
    setup = campaign_with(["nobody@example.org", "ok@example.org"])
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    db.expire_all()
    failed = db.scalar(select(Message).where(Message.status == "failed"))
    assert failed is not None and failed.bounce_kind == "hard"
    assert failed.error == "refused by the receiving server (550 5.1.1)"
    assert queries.bounce_counts(setup.campaign_id)["hard"] == 1
    assert suppression_reason(setup.tenant.account_id, "nobody@example.org") == "hard_bounce"
    assert _status(db, setup.campaign_id) == "sent"


def test_transport_errors_pause_the_campaign_with_the_reason(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(SEND_MAX_TRANSPORT_ERRORS=3, SEND_RETRY_BASE_SECONDS=0.05)
    client = app.test_client()
    with app.app_context():
        from core import db

        setup = campaign_with(["a@example.org", "b@example.org"])
        server = senders.save_smtp_server(
            setup.tenant.account_id,
            name="broken",
            url="smtp://127.0.0.1:1?starttls=0&timeout=2",
            max_per_second=0,
            max_connections=1,
        )
        services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    with app.app_context():
        from core import db

        campaign = db.session.get(Campaign, setup.campaign_id)
        assert campaign is not None and campaign.status == "paused"
        assert "3 transport errors in a row" in campaign.pause_reason
        assert "127.0.0.1:1" in campaign.pause_reason
        assert _message_statuses(db.session, setup.campaign_id) == {"pending": 2}
    login(client, setup.tenant.email)
    page = client.get(f"/campaigns/{setup.campaign_id}").get_data(as_text=True)
    assert "3 transport errors in a row" in page
    # Fix the server, resume: everything goes out once.
    with app.app_context():
        senders.delete_smtp_server(setup.tenant.account_id, server.id)
    assert client.post(f"/campaigns/{setup.campaign_id}/resume").status_code == 302
    drain(app)
    assert sorted(r.recipients[0] for r in smtp_sink.wait_for(2)) == [
        "a@example.org",
        "b@example.org",
    ]


def test_several_smtp_servers_share_the_campaign(app: Any, db: Any, smtp_sink: SMTPSink) -> None:
    other = SMTPSink().start()
    try:
        addresses = [f"r{n}@example.org" for n in range(40)]
        setup = campaign_with(addresses)
        for sink in (smtp_sink, other):
            senders.save_smtp_server(
                setup.tenant.account_id,
                name="s",
                url=sink.url,
                max_per_second=25,  # neither server can take all 40 alone in time
                max_connections=1,
            )
        app.config["SEND_BATCH_SIZE"] = 5
        services.start(setup.tenant.account_id, setup.campaign_id)
        drain(app)
        got = [r.recipients[0] for r in smtp_sink.messages + other.messages]
        assert sorted(got) == sorted(addresses)
        assert smtp_sink.messages and other.messages
    finally:
        other.stop()


def test_rate_limit_spreads_sends_over_seconds(app: Any) -> None:
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, 0), tick=False) as traveller:
        slept: list[float] = []

        def fake_sleep(seconds: float) -> None:
            slept.append(seconds)
            traveller.shift(seconds)

        limiter = throttle.Throttle(None, "test")
        import time as time_module

        real_sleep = time_module.sleep
        time_module.sleep = fake_sleep  # type: ignore[assignment]
        try:
            start = time_module.time()
            for _ in range(12):
                assert limiter.wait_for_rate("server:rate-test", 5, deadline=start + 60)
            elapsed = time_module.time() - start
        finally:
            time_module.sleep = real_sleep  # type: ignore[assignment]
    # 12 sends at 5/s need three one-second windows.
    assert 2.0 <= elapsed < 3.0
    assert len(slept) == 2


def test_domain_concurrency_limit(app: Any) -> None:
    limiter = throttle.Throttle(None, "test")
    with app.app_context():
        with (
            limiter.domain_slot(1, "example.org", 2) as first,
            limiter.domain_slot(1, "example.org", 2) as second,
        ):
            assert first and second
            with limiter.domain_slot(1, "example.org", 2, wait=0.05) as third:
                assert third is False
            with limiter.domain_slot(1, "other.example", 2) as elsewhere:
                assert elsewhere
        with limiter.domain_slot(1, "example.org", 2) as again:
            assert again


def test_the_engine_gates_domain_pacing_is_consulted(app: Any, monkeypatch: Any) -> None:
    from privacy import engine_gate

    asked: list[tuple[int, str]] = []

    def pace(account: int, domain: str) -> float:
        asked.append((account, domain))
        return 0

    monkeypatch.setattr(engine_gate, "pacing_pause", pace)
    with (
        app.app_context(),
        throttle.Throttle(None, "t").domain_slot(7, "example.net", 0) as free,
    ):
        assert free
    assert asked == [(7, "example.net")]


def test_schedule_starts_at_its_time_from_database_state(
    app: Any, db: Any, smtp_sink: SMTPSink
) -> None:
    setup = campaign_with(["ada@example.org"])
    with time_machine.travel(datetime(2026, 5, 1, 9, 0), tick=False):
        when = datetime(2026, 5, 1, 10, 30)
        with pytest.raises(ValidationError):
            services.schedule(setup.tenant.account_id, setup.campaign_id, utcnow())
        services.schedule(setup.tenant.account_id, setup.campaign_id, when)
        assert _status(db, setup.campaign_id) == "scheduled"
    assert reconciler.reconcile(datetime(2026, 5, 1, 10, 29)).started == 0
    assert _status(db, setup.campaign_id) == "scheduled"
    assert reconciler.reconcile(datetime(2026, 5, 1, 10, 31)).started == 1
    assert reconciler.reconcile(datetime(2026, 5, 1, 10, 32)).started == 0  # once only
    drain(app)
    assert [r.recipients[0] for r in smtp_sink.wait_for(1)] == ["ada@example.org"]
    assert _status(db, setup.campaign_id) == "sent"


def test_unschedule_returns_to_draft(app: Any, db: Any) -> None:
    setup = campaign_with(["ada@example.org"])
    services.schedule(setup.tenant.account_id, setup.campaign_id, utcnow() + timedelta(days=1))
    services.unschedule(setup.tenant.account_id, setup.campaign_id)
    assert _status(db, setup.campaign_id) == "draft"
    assert reconciler.reconcile(utcnow() + timedelta(days=2)).started == 0


def test_pause_then_resume(app_factory: Any, smtp_sink: SMTPSink) -> None:
    app = app_factory(SEND_BATCH_SIZE=2, SEND_CONNECTIONS=1)
    with app.app_context():
        addresses = [f"p{n}@example.org" for n in range(6)]
        setup = campaign_with(addresses)
        services.start(setup.tenant.account_id, setup.campaign_id)
        assert delivery.send_batch(setup.campaign_id, claims=1) == 2
        services.pause(setup.tenant.account_id, setup.campaign_id)
        assert delivery.send_batch(setup.campaign_id, claims=1) == 0  # a queued batch does nothing
    drain(app)
    assert len(smtp_sink.messages) == 2
    with app.app_context():
        services.resume(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    assert sorted(r.recipients[0] for r in smtp_sink.messages) == sorted(addresses)
    with app.app_context():
        from core import db

        assert _status(db.session, setup.campaign_id) == "sent"


def test_cancel_stops_for_good(app_factory: Any, smtp_sink: SMTPSink) -> None:
    app = app_factory(SEND_BATCH_SIZE=2, SEND_CONNECTIONS=1)
    with app.app_context():
        from core import db

        setup = campaign_with([f"c{n}@example.org" for n in range(6)])
        services.start(setup.tenant.account_id, setup.campaign_id)
        assert delivery.send_batch(setup.campaign_id, claims=1) == 2
        services.cancel(setup.tenant.account_id, setup.campaign_id)
        with pytest.raises(ValidationError):
            services.resume(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    with app.app_context():
        from core import db

        assert _status(db.session, setup.campaign_id) == "cancelled"
        assert reconciler.reconcile(utcnow() + timedelta(hours=1)).requeued_campaigns == 0
        assert _message_statuses(db.session, setup.campaign_id) == {"sent": 2, "pending": 4}
    assert len(smtp_sink.messages) == 2


def test_reconciler_recovers_a_dead_workers_claim_without_duplicates(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(SEND_CLAIM_TIMEOUT=60, SEND_STALL_SECONDS=30)
    with app.app_context():
        from core import db

        addresses = [f"d{n}@example.org" for n in range(8)]
        setup = campaign_with(addresses)
        services.start(setup.tenant.account_id, setup.campaign_id)
        app.extensions["queue"].broker.flush_all()  # the queue lost its messages
        # What a worker killed mid-batch leaves: its claim, two rows marked sent.
        ids = list(db.session.scalars(select(Message.id).order_by(Message.id)))
        claimed_at = utcnow() - timedelta(minutes=5)
        db.session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(status="claimed", claim_token="dead", claimed_at=claimed_at)
        )
        db.session.execute(
            update(Message)
            .where(Message.id.in_(ids[:2]))
            .values(status="sent", claim_token=None, sent_at=claimed_at)
        )
        db.session.execute(update(Campaign).values(last_progress_at=claimed_at))
        db.session.commit()
        report = reconciler.reconcile(utcnow())
        window = delivery.UNCERTAIN_PER_CLAIM
        assert (report.recovered_claims, report.interrupted, report.requeued_campaigns) == (
            1,
            window,
            1,
        )
        # The first unmarked rows in send order may have been accepted: failed, never resent.
        for message_id in ids[2 : 2 + window]:
            interrupted = db.session.get(Message, message_id)
            assert interrupted is not None and interrupted.status == "failed"
            assert "interrupted" in (interrupted.error or "")
    drain(app)
    # The two marked sent and the interrupted ones are not resent; the rest go once.
    assert sorted(r.recipients[0] for r in smtp_sink.messages) == addresses[2 + window :]
    with app.app_context():
        from core import db

        assert _status(db.session, setup.campaign_id) == "sent"


def test_verified_sender_required_and_confirmed_by_post(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(REQUIRE_VERIFIED_SENDER=True)
    client = app.test_client()
    with app.app_context():
        from tests.factories import make_list_with_contacts, make_tenant

        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, ["ada@example.org"])
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="n",
            subject="s",
            from_name="",
            from_email="promo@shop.example",
            html_body="<p>x</p>",
            list_ids=[list_id],
        )
        with pytest.raises(ValidationError, match="verify the sender address"):
            services.start(tenant.account_id, campaign.id)
    login(client, tenant.email)
    assert client.post("/sending/senders", data={"email": "promo@shop.example"}).status_code == 302
    confirmation = smtp_sink.wait_for(1)[0]
    assert confirmation.recipients == ["promo@shop.example"]
    link = next(
        line for line in confirmation.message.get_content().splitlines() if "/senders/" in line
    )
    path = link.strip().removeprefix("http://localhost")
    assert client.get(path).status_code == 200  # a link scanner's GET confirms nothing
    with app.app_context():
        assert not senders.is_verified_sender(tenant.account_id, "promo@shop.example")
    assert client.post(path).status_code == 200
    with app.app_context():
        assert senders.is_verified_sender(tenant.account_id, "promo@shop.example")
        services.start(tenant.account_id, campaign.id)
    drain(app)
    assert smtp_sink.wait_for(2)[-1].recipients == ["ada@example.org"]


def test_progress_endpoint(app: Any, client: Any, db: Any, smtp_sink: SMTPSink) -> None:
    setup = campaign_with(["a@example.org", "b@example.org"])
    services.start(setup.tenant.account_id, setup.campaign_id)
    login(client, setup.tenant.email)
    before = client.get(f"/campaigns/{setup.campaign_id}/progress.json").get_json()
    assert before["total"] == 2 and before["sent"] == 0 and before["status"] == "sending"
    drain(app)
    after = client.get(f"/campaigns/{setup.campaign_id}/progress.json").get_json()
    assert (after["sent"], after["percent"], after["status"]) == (2, 100, "sent")
    other = campaign_with(["z@example.org"], email="other@other.example")
    assert client.get(f"/campaigns/{other.campaign_id}/progress.json").status_code == 404
