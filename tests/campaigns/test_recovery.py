"""Recovery (issue 14): claims are leases renewed while a worker holds them; a connection cut
after the end of a message and before its reply (the RFC 1047 window) is failed as interrupted
and never resent, like a killed worker's message, while a cut before the end is retried on
another connection; the reconciler and the bounce mailboxes run on the scheduler."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns import services
from campaigns.models import Campaign, Message
from campaigns.sending import delivery, reconciler
from core import scheduler
from core.mail import OutcomeUnknownError, SMTPConnection, SMTPSettings, TransportError
from tests.campaigns.helpers import campaign_with, message_to
from tests.conftest import drain
from tests.smtp_sink import SMTPSink

WIRE = b"From: a@shop.example\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhello\r\n"


@pytest.mark.parametrize("chunking", [False, True], ids=["DATA", "BDAT"])
def test_a_cut_after_the_end_of_the_message_is_an_unknown_outcome(
    smtp_sink: SMTPSink, chunking: bool
) -> None:
    smtp_sink.clear()
    smtp_sink.chunking = chunking
    smtp_sink.drop_for("after@example.org", "after-end")
    smtp_sink.drop_for("before@example.org", "before-end")
    settings = SMTPSettings.from_url(smtp_sink.url)

    conn = SMTPConnection(settings)
    with pytest.raises(OutcomeUnknownError):
        conn.send(WIRE, "a@shop.example", ["after@example.org"])
    assert [m.recipients for m in smtp_sink.messages] == [["after@example.org"]]

    conn = SMTPConnection(settings)
    with pytest.raises(TransportError) as cut:
        conn.send(WIRE, "a@shop.example", ["before@example.org"])
    # DATA: the message never ended, a plain transport error (retried). BDAT: the envelope and
    # the whole message leave in one write, so any later cut is on the unknown side.
    assert isinstance(cut.value, OutcomeUnknownError) is chunking
    assert len(smtp_sink.messages) == 1
    smtp_sink.clear()


@pytest.mark.parametrize("chunking", [False, True], ids=["DATA", "BDAT"])
def test_a_campaign_through_cut_connections_sends_each_recipient_at_most_once(
    app_factory: Any, smtp_sink: SMTPSink, chunking: bool
) -> None:
    app = app_factory(SEND_RETRY_BASE_SECONDS=0.05, SEND_BATCH_SIZE=50)
    addresses = [f"r{n}@example.org" for n in range(6)]
    smtp_sink.chunking = chunking
    smtp_sink.drop_for("r1@example.org", "before-end")
    smtp_sink.drop_for("r3@example.org", "after-end")
    with app.app_context():
        setup = campaign_with(addresses)
        services.start(setup.tenant.account_id, setup.campaign_id)
        drain(app)
        received = Counter(m.recipients[0] for m in smtp_sink.messages)
        # Never a duplicate: the message cut after its end arrived once and was not resent.
        assert set(received.values()) == {1}
        assert received["r3@example.org"] == 1
        cut_after = message_to("r3@example.org")
        assert cut_after.status == "failed"
        assert (cut_after.error or "").startswith("interrupted")
        cut_before = message_to("r1@example.org")
        if chunking:  # the whole message had left: unknown outcome, failed, not resent
            assert "r1@example.org" not in received
            assert cut_before.status == "failed"
            assert (cut_before.error or "").startswith("interrupted")
        else:  # the message never ended: sent again on another connection
            assert received["r1@example.org"] == 1
            assert cut_before.status == "sent"
        others = set(addresses) - {"r1@example.org", "r3@example.org"}
        assert others <= set(received)
        from core import db

        db.session.expire_all()
        campaign = db.session.get(Campaign, setup.campaign_id)
        assert campaign is not None and campaign.status == "sent"


def test_a_slow_claim_keeps_its_lease_and_the_reconciler_leaves_it_alone(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    # Eight messages at 2 a second: one claim held about 4 s, twice the lease.
    app = app_factory(SEND_CLAIM_TIMEOUT=2, SMTP_MAX_PER_SECOND=2, SEND_BATCH_SIZE=50)
    addresses = [f"slow{n}@example.org" for n in range(8)]
    with app.app_context():
        from core import db

        setup = campaign_with(addresses)
        services.start(setup.tenant.account_id, setup.campaign_id)
        sender = threading.Thread(target=drain, args=(app,))
        sender.start()
        first_claimed_at = None
        renewed = False
        recovered = 0
        while sender.is_alive():
            db.session.expire_all()
            claimed_at = db.session.scalar(
                select(func.max(Message.claimed_at)).where(Message.status == "claimed")
            )
            db.session.rollback()
            if claimed_at is not None:
                first_claimed_at = first_claimed_at or claimed_at
                renewed = renewed or (claimed_at - first_claimed_at).total_seconds() >= 1
            recovered += reconciler.reconcile().recovered_claims
            time.sleep(0.25)
        sender.join()
        assert renewed, "the claim's lease was never renewed"
        assert recovered == 0
        interrupted = db.session.scalar(
            select(func.count()).select_from(Message).where(Message.error.like("interrupted%"))
        )
        assert interrupted == 0
    received = Counter(m.recipients[0] for m in smtp_sink.messages)
    assert sorted(received) == sorted(addresses) and set(received.values()) == {1}


def test_a_dead_claim_is_recovered_after_its_lease_and_its_chain_restarted(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from core.db import utcnow

    app = app_factory(SEND_CLAIM_TIMEOUT=20)
    addresses = [f"k{n}@example.org" for n in range(6)]
    with app.app_context():
        from core import db

        setup = campaign_with(addresses)
        services.start(setup.tenant.account_id, setup.campaign_id)
        app.extensions["queue"].broker.flush_all()  # the killed worker's chain message
        stamp = utcnow() - timedelta(seconds=15)
        db.session.execute(
            update(Message).values(status="claimed", claim_token="1.deadbeef", claimed_at=stamp)
        )
        db.session.execute(update(Campaign).values(last_progress_at=stamp))
        db.session.commit()
        # 15 s without a renewal: within the lease, alive.
        assert reconciler.reconcile(utcnow()).recovered_claims == 0
        report = reconciler.reconcile(utcnow() + timedelta(seconds=6))
        assert (report.recovered_claims, report.interrupted) == (
            1,
            delivery.UNCERTAIN_PER_CLAIM,
        )
    drain(app)  # the claim's chain (1) was enqueued again
    received = sorted(m.recipients[0] for m in smtp_sink.messages)
    assert received == addresses[delivery.UNCERTAIN_PER_CLAIM :]


def test_the_scheduler_runs_the_reconciler_and_the_bounce_mailboxes_on_their_intervals(
    app_factory: Any,
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    app = app_factory(SCHEDULER_INTERVAL_SECONDS=300)
    ticks = scheduler.intervals(app)
    assert "reconcile-sends" in ticks[10]
    assert "read-bounce-mailboxes" in ticks[300]
    background = BackgroundScheduler(timezone="UTC")
    from datetime import UTC, datetime

    scheduler.add_jobs(app, background, datetime.now(UTC))
    registered = {
        name: job.trigger.interval.total_seconds()
        for job in background.get_jobs()
        if isinstance(job.trigger, IntervalTrigger)
        for name in job.args[1]
    }
    assert registered["reconcile-sends"] == 10
    assert registered["read-bounce-mailboxes"] == 300
    assert set(registered) == {job.name for job in scheduler.JOBS}
    # Both resolve to callables taking the scheduler's ``now``.
    for job in scheduler.JOBS:
        if job.name in {"reconcile-sends", "read-bounce-mailboxes"}:
            assert scheduler.resolve(job) is not None
    with app.app_context():
        results = scheduler.run_jobs(app, only=["reconcile-sends", "read-bounce-mailboxes"])
    assert results["read-bounce-mailboxes"] == 0  # nothing configured: nothing read
    assert isinstance(results["reconcile-sends"], reconciler.ReconcileReport)
