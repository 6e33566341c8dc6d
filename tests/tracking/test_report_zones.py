"""The report's series are bucketed by the account's local hours and days (read through HTTP:
the report page and its CSV); storage stays UTC."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import time_machine
from flask import Flask
from flask.testing import FlaskClient

from accounts import services as accounts
from core import db as core_db
from tests.conftest import drain
from tests.factories import login
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BROWSER_UA, Sent, send_campaign
from tracking import services as tracking

RECIPIENTS = ["priya@mail.example", "ольга@почта.example", "zoë@correo.example"]
SENT_AT = datetime(2026, 12, 2, 12, 0)


def _sent_in(app: Flask, smtp_sink: SMTPSink, zone: str, at: datetime = SENT_AT) -> Sent:
    with time_machine.travel(at, tick=True):
        sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    with app.app_context():
        accounts.update_general_settings(sent.tenant.account_id, "Shop", "1 Main St", zone)
        core_db.session.remove()
    return sent


def _open(app: Flask, sent: Sent, address: str, at: datetime) -> None:
    beacon = sent.urls[address].beacon
    assert beacon is not None
    with time_machine.travel(at, tick=False):
        app.test_client(use_cookies=False).get(path_of(beacon), headers={"User-Agent": BROWSER_UA})
        drain(app)


def _series(client: FlaskClient, campaign_id: int) -> list[list[str]]:
    text = client.get(f"/campaigns/{campaign_id}/report.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    start = next(
        i for i, row in enumerate(rows) if row[:2] in (["hour", "opens"], ["day", "opens"])
    )
    end = rows.index([], start)
    return rows[start:end]


def test_hours_are_the_account_local_hours(
    app: Flask, client: FlaskClient, smtp_sink: SMTPSink
) -> None:
    """18:20 UTC is 23:50 IST; 18:40 and 19:05 UTC are 00:10 and 00:35 IST the next day: in
    UTC hours that is 2 + 1, in Kolkata hours 1 + 2, on two different dates."""
    sent = _sent_in(app, smtp_sink, "Asia/Kolkata")
    _open(app, sent, RECIPIENTS[0], datetime(2026, 12, 2, 18, 20))
    _open(app, sent, RECIPIENTS[1], datetime(2026, 12, 2, 18, 40))
    _open(app, sent, RECIPIENTS[2], datetime(2026, 12, 2, 19, 5))
    login(client, sent.tenant.email)
    series = _series(client, sent.campaign_id)
    assert series[0][0] == "hour"
    assert [row[:2] for row in series[1:]] == [
        ["2026-12-02 23:00:00+05:30", "1"],
        ["2026-12-03 00:00:00+05:30", "2"],
    ]
    page = client.get(f"/campaigns/{sent.campaign_id}/report").get_data(as_text=True)
    assert "(per hour, Asia/Kolkata time)" in page
    assert "02 Dec 23:00" in page and "03 Dec 00:00" in page  # the chart's axis


def test_a_fall_back_night_shows_the_repeated_hour_twice(
    app: Flask, client: FlaskClient, smtp_sink: SMTPSink
) -> None:
    """New York, 1 Nov 2026: 01:00-02:00 happens twice (EDT, then EST)."""
    sent = _sent_in(app, smtp_sink, "America/New_York", datetime(2026, 10, 31, 12, 0))
    _open(app, sent, RECIPIENTS[0], datetime(2026, 11, 1, 5, 30))  # 01:30 EDT
    _open(app, sent, RECIPIENTS[1], datetime(2026, 11, 1, 6, 30))  # 01:30 EST
    _open(app, sent, RECIPIENTS[2], datetime(2026, 11, 1, 7, 30))  # 02:30 EST
    login(client, sent.tenant.email)
    assert [row[:2] for row in _series(client, sent.campaign_id)[1:]] == [
        ["2026-11-01 01:00:00-04:00", "1"],
        ["2026-11-01 01:00:00-05:00", "1"],
        ["2026-11-01 02:00:00-05:00", "1"],
    ]


def test_days_are_local_days_and_stay_so_once_retention_deleted_the_events(
    app: Flask, client: FlaskClient, smtp_sink: SMTPSink
) -> None:
    """An open at 18:40 UTC on 2 Dec is on 3 Dec in Kolkata. Once retention has deleted the
    events, the quarter-hour roll-up still places it there (migration 0323; before, the
    series fell back to the daily totals' UTC days)."""
    sent = _sent_in(app, smtp_sink, "Asia/Kolkata")
    _open(app, sent, RECIPIENTS[0], datetime(2026, 12, 2, 18, 40))
    _open(app, sent, RECIPIENTS[1], datetime(2026, 12, 6, 10, 0))
    login(client, sent.tenant.email)
    series = _series(client, sent.campaign_id)
    assert series[0][0] == "day"
    days = {row[0]: row[1] for row in series[1:]}
    assert days["2026-12-03 00:00:00+05:30"] == "1"
    assert days["2026-12-06 00:00:00+05:30"] == "1"
    assert "2026-12-02 00:00:00+05:30" not in days
    page = client.get(f"/campaigns/{sent.campaign_id}/report").get_data(as_text=True)
    assert "(per day, Asia/Kolkata time)" in page and "series-zone-note" not in page

    with app.app_context():
        accounts.update_privacy_settings(sent.tenant.account_id, True, "truncate", 2)
        assert tracking.apply_event_retention(datetime(2026, 12, 6, 12, 0)) == 1
        core_db.session.remove()
    series = _series(client, sent.campaign_id)
    assert {row[0]: row[1] for row in series[1:]} == days  # nothing lost, nothing moved
    page = client.get(f"/campaigns/{sent.campaign_id}/report").get_data(as_text=True)
    assert "(per day, Asia/Kolkata time)" in page and "series-zone-note" not in page


def test_a_utc_account_sees_utc_hours(app: Flask, client: FlaskClient, smtp_sink: SMTPSink) -> None:
    sent = _sent_in(app, smtp_sink, "UTC")
    _open(app, sent, RECIPIENTS[0], datetime(2026, 12, 2, 18, 20))
    _open(app, sent, RECIPIENTS[1], SENT_AT + timedelta(hours=6, minutes=40))
    login(client, sent.tenant.email)
    assert [row[:2] for row in _series(client, sent.campaign_id)[1:]] == [
        ["2026-12-02 18:00:00+00:00", "2"],
    ]
