"""tracking_events partitioned by month on PostgreSQL (migration 0323): partitions made ahead
by the scheduler, events landing in their month (or the DEFAULT partition), retention
dropping whole months. SQLite keeps one table and the same calls change nothing there."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select, text

from accounts import services as accounts
from core import db as core_db
from core.scheduler import run_jobs
from tests import services_available
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import Sent, send_campaign
from tracking import analytics, partitions, services
from tracking.hits import Hit
from tracking.models import TrackingEvent

RECIPIENTS = ["ada@example.org", "bob@example.net"]


@pytest.fixture
def postgres(db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("partitions exist on PostgreSQL only (SQLite keeps one table)")
    services_available.require("postgres")


def _partitions(app: Flask) -> set[str]:
    with app.app_context():
        names = {p.name for p in partitions.monthly_partitions()}
        core_db.session.remove()
    return names


def _where(app: Flask) -> dict[str, int]:
    """How many events each partition holds."""
    with app.app_context():
        rows = core_db.session.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM tracking_events GROUP BY 1")
        ).all()
        core_db.session.remove()
    return {str(name): int(count) for name, count in rows}


def _sent(app: Flask, smtp_sink: SMTPSink) -> tuple[Sent, int]:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    with app.app_context():
        from campaigns.models import Message

        message = core_db.session.scalar(
            select(Message.id).where(Message.campaign_id == sent.campaign_id).limit(1)
        )
        core_db.session.remove()
    assert message is not None
    return sent, int(message)


def _open(app: Flask, sent: Sent, message: int, at: datetime) -> None:
    with app.app_context():
        assert services.ingest([Hit("open", sent.campaign_id, message, None, None, "desktop", at)])
        core_db.session.remove()


def test_the_scheduler_creates_this_month_and_three_ahead(postgres: None, app: Flask) -> None:
    with time_machine.travel(datetime(2029, 11, 20, 8, 0), tick=False):
        first = run_jobs(app, now=datetime(2029, 11, 20, 8, 0), only=["tracking-partitions"])
    assert first == {"tracking-partitions": 4}
    assert {
        "tracking_events_p202911",
        "tracking_events_p202912",
        "tracking_events_p203001",
        "tracking_events_p203002",
    } <= _partitions(app)
    again = run_jobs(app, now=datetime(2029, 11, 25), only=["tracking-partitions"])
    assert again == {"tracking-partitions": 0}
    later = run_jobs(app, now=datetime(2029, 12, 1), only=["tracking-partitions"])
    assert later == {"tracking-partitions": 1}
    assert "tracking_events_p203003" in _partitions(app)


def test_events_land_in_their_month_and_outside_every_month_in_the_default(
    postgres: None, app: Flask, smtp_sink: SMTPSink
) -> None:
    sent, message = _sent(app, smtp_sink)
    with app.app_context():
        partitions.ensure_partitions(datetime(2032, 3, 1))
        core_db.session.remove()
    _open(app, sent, message, datetime(2032, 4, 30, 23, 59, 59))
    _open(app, sent, message, datetime(2032, 5, 1, 0, 0))
    _open(app, sent, message, datetime(2040, 1, 1, 12, 0))  # no month made for it yet
    assert _where(app) == {
        "tracking_events_p203204": 1,
        "tracking_events_p203205": 1,
        "tracking_events_default": 1,
    }
    # Making that month moves its rows out of the DEFAULT partition.
    with app.app_context():
        assert partitions.ensure_partitions(datetime(2039, 12, 10)) == 4
        core_db.session.remove()
    assert _where(app) == {
        "tracking_events_p203204": 1,
        "tracking_events_p203205": 1,
        "tracking_events_p204001": 1,
    }
    with app.app_context():
        stats = analytics.campaign_stats(sent.campaign_id)
        core_db.session.remove()
    assert (stats.opens, stats.unique_opens) == (3, 1)


def test_retention_drops_whole_months_and_deletes_rows_only_in_the_month_partly_expired(
    postgres: None, app: Flask, smtp_sink: SMTPSink
) -> None:
    sent, message = _sent(app, smtp_sink)
    with app.app_context():
        accounts.update_privacy_settings(sent.tenant.account_id, True, "truncate", 30)
        partitions.ensure_partitions(datetime(2035, 3, 1))  # March to June 2035
        core_db.session.remove()
    for at in (
        datetime(2035, 3, 10),  # March: wholly older than the cutoff
        datetime(2035, 3, 31, 23, 0),
        datetime(2035, 5, 10),  # May: before the cutoff, in a month partly kept
        datetime(2035, 5, 20),  # kept
        datetime(2035, 6, 10),  # kept
    ):
        _open(app, sent, message, at)
    now = datetime(2035, 6, 15)  # cutoff: 16 May 2035
    with app.app_context():
        report_before = analytics.campaign_report(sent.tenant.account_id, sent.campaign_id)
        assert services.apply_event_retention(now) == 3
        remaining = core_db.session.scalars(
            select(TrackingEvent.occurred_at)
            .where(TrackingEvent.campaign_id == sent.campaign_id)
            .order_by(TrackingEvent.occurred_at)
        ).all()
        assert remaining == [datetime(2035, 5, 20), datetime(2035, 6, 10)]
        report_after = analytics.campaign_report(sent.tenant.account_id, sent.campaign_id)
        assert services.apply_event_retention(now) == 0  # twice changes nothing
        core_db.session.remove()
    names = _partitions(app)
    assert "tracking_events_p203503" not in names and "tracking_events_p203504" not in names
    assert {"tracking_events_p203505", "tracking_events_p203506"} <= names
    # The figures live in the roll-ups: nothing in the report changed.
    assert report_after.stats == report_before.stats
    assert report_after.series == report_before.series


def test_sqlite_keeps_one_table(db_backend: str, app: Flask) -> None:
    if db_backend != "sqlite":
        pytest.skip("the SQLite case")
    with app.app_context():
        assert partitions.ensure_partitions(datetime(2030, 1, 1)) == 0
        assert partitions.drop_expired_partitions(datetime(2030, 1, 1)) == 0
        assert core_db.session.scalar(select(func.count()).select_from(TrackingEvent)) == 0
        core_db.session.remove()
