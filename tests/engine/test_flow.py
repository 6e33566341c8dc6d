"""The engine fed by the real sender (over SMTP) and the real beacon (over HTTP)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from flask import Flask

from accounts import services as accounts
from campaigns import services as campaigns
from core import db as core_db
from core.db import utcnow
from privacy import engine_gate
from tests.conftest import drain
from tests.factories import make_campaign, make_list_with_contacts, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)"


def test_sends_and_human_opens_teach_the_engine(app: Flask, smtp_sink: SMTPSink) -> None:
    client = app.test_client()
    with time_machine.travel(datetime(2026, 11, 20, 19, 5), tick=True):
        with app.app_context():
            sender = make_tenant("owner@sender.example", "Sender")
            other = make_tenant("owner@other.example", "Other")
            accounts.update_privacy_settings(sender.account_id, True, "truncate", 180)
            list_id = make_list_with_contacts(sender, ["ann@inbox.example", "gone@inbox.example"])
            smtp_sink.reply_for("gone@inbox.example", "550 5.1.1 no such user")
            campaign_id = make_campaign(sender, list_id)
            campaigns.start(sender.account_id, campaign_id)
            core_db.session.remove()
        drain(app)
        received = smtp_sink.wait_for(1)
        beacon = urls_of(received[0].message).beacon
        assert beacon is not None
    # Opened half an hour later (hits seconds after delivery count as machine activity).
    with time_machine.travel(datetime(2026, 11, 20, 19, 40), tick=True):
        for agent in (HUMAN, HUMAN, GMAIL_PROXY, GMAIL_PROXY, GMAIL_PROXY):
            response = client.get(path_of(beacon), headers={"User-Agent": agent})
            assert response.status_code == 200
        drain(app)  # the buffered hits are ingested, and the engine's share forwarded

        with app.app_context():
            # The hard bounce at one account protects the other.
            assert engine_gate.engine_suppressed(
                other.account_id, ["gone@inbox.example", "ann@inbox.example"]
            ) == {"gone@inbox.example"}
            # Two human opens at 19h; the proxy's fetches taught nothing.
            assert engine_gate.best_send_hour(other.account_id, "ann@inbox.example", (6, 12)) == 11
            assert engine_gate.best_send_hour(other.account_id, "ann@inbox.example", (0, 24)) == 19
            core_db.session.remove()


def test_an_account_that_left_teaches_nothing_by_sending(
    app: Flask, smtp_sink: SMTPSink, db: Any
) -> None:
    sender = make_tenant("owner@sender.example", "Sender")
    other = make_tenant("owner@other.example", "Other")
    accounts.set_engine_participation(sender.account_id, False)
    list_id = make_list_with_contacts(sender, ["gone@inbox.example"])
    smtp_sink.reply_for("gone@inbox.example", "550 5.1.1 no such user")
    campaign_id = make_campaign(sender, list_id)
    campaigns.start(sender.account_id, campaign_id)
    db.remove()
    drain(app)
    assert engine_gate.engine_suppressed(other.account_id, ["gone@inbox.example"]) == set()
    assert engine_gate.contribution_count(sender.account_id) == 0


def test_a_failing_engine_never_costs_a_send_or_a_hit(
    app: Flask, smtp_sink: SMTPSink, db: Any, monkeypatch: Any
) -> None:
    """Fault injection: every engine write fails with a database error."""
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from campaigns.models import Message
    from engine import services as engine_services
    from tracking.models import TrackingEvent

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("INSERT INTO engine_contributions", {}, Exception("disk full"))

    monkeypatch.setattr(engine_services, "record", broken)
    sender = make_tenant("owner@sender.example", "Sender")
    accounts.update_privacy_settings(sender.account_id, True, "truncate", 180)
    list_id = make_list_with_contacts(sender, ["ann@inbox.example", "bob@inbox.example"])
    campaign_id = make_campaign(sender, list_id)
    campaigns.start(sender.account_id, campaign_id)
    db.remove()
    drain(app)
    assert len(smtp_sink.wait_for(2)) == 2
    statuses = db.scalars(select(Message.status).where(Message.campaign_id == campaign_id)).all()
    assert statuses == ["sent", "sent"]
    beacon = urls_of(smtp_sink.messages[0].message).beacon
    assert beacon is not None
    with time_machine.travel(utcnow() + timedelta(minutes=30), tick=True):
        app.test_client().get(path_of(beacon), headers={"User-Agent": HUMAN})
        drain(app)
    db.remove()
    assert db.scalar(select(TrackingEvent.kind)) == "open"  # the hit is stored all the same
    assert len(smtp_sink.messages) == 2  # and nothing was sent twice
