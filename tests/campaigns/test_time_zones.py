"""Scheduling and best-hour windows in the account's time zone (storage stays UTC).

Through HTTP: the schedule form's datetime-local value is read in the account's zone, across
DST changes in Europe/Berlin and America/New_York and in +05:30 / +12:45 zones; the campaign
then starts at the right UTC instant and its email arrives. The best-hour window's hours are
the account's local hours, converted to the engine's UTC hours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import services as accounts
from campaigns import services
from campaigns.models import Campaign, Message
from campaigns.sending import reconciler
from privacy import engine_gate
from subscribers.models import Contact
from tests.campaigns.helpers import Setup, campaign_with
from tests.conftest import drain
from tests.engine.sending import message_for
from tests.factories import login
from tests.smtp_sink import SMTPSink


def _in_zone(zone: str, addresses: list[str] | None = None) -> Setup:
    setup = campaign_with(addresses or ["zoë.ñúñez@correo.example"])
    accounts.update_general_settings(setup.tenant.account_id, "Shop", "1 Main St", zone)
    return setup


def _schedule(client: FlaskClient, campaign_id: int, wall: str) -> Any:
    return client.post(f"/campaigns/{campaign_id}/schedule", data={"send_at": wall})


def _scheduled_at(db: Any, campaign_id: int) -> datetime | None:
    db.expire_all()
    return db.scalar(select(Campaign.scheduled_at).where(Campaign.id == campaign_id))


@pytest.mark.parametrize(
    ("zone", "now", "wall", "utc", "shown"),
    [
        # Berlin, the night the clocks go forward (29 Mar 2026): 03:30 CEST is 01:30 UTC.
        ("Europe/Berlin", "2026-03-28 12:00", "2026-03-29T03:30", "2026-03-29 01:30", "CEST"),
        # Berlin in winter.
        ("Europe/Berlin", "2026-12-01 12:00", "2026-12-03T14:00", "2026-12-03 13:00", "CET"),
        # New York, the morning after the clocks go back (1 Nov 2026): EST, -05:00.
        ("America/New_York", "2026-10-31 12:00", "2026-11-01T09:00", "2026-11-01 14:00", "EST"),
        # Kolkata, +05:30 all year.
        ("Asia/Kolkata", "2026-12-01 12:00", "2026-12-03T09:00", "2026-12-03 03:30", "IST"),
        # Chatham in its summer, +13:45: the local morning is the UTC evening before.
        (
            "Pacific/Chatham",
            "2026-12-01 12:00",
            "2026-12-03T09:00",
            "2026-12-02 19:15",
            "UTC+13:45",
        ),
    ],
)
def test_the_schedule_form_is_read_in_the_account_zone(
    app: Flask,
    db: Any,
    client: FlaskClient,
    zone: str,
    now: str,
    wall: str,
    utc: str,
    shown: str,
) -> None:
    with time_machine.travel(now, tick=False):
        setup = _in_zone(zone)
        login(client, setup.tenant.email)
        response = _schedule(client, setup.campaign_id, wall)
        assert response.status_code == 302, response.get_data(as_text=True)
        assert _scheduled_at(db, setup.campaign_id) == datetime.fromisoformat(utc)
        page = client.get(f"/campaigns/{setup.campaign_id}").get_data(as_text=True)
    local = datetime.fromisoformat(wall)  # what the person typed, shown back in their zone
    assert f"Scheduled for {local.day} {local:%b %Y}, {local:%H:%M} {shown}." in page


@pytest.mark.parametrize(
    ("zone", "wall", "gap"),
    [
        ("Europe/Berlin", "2026-03-29T02:30", "from 02:00 to 03:00"),
        ("America/New_York", "2026-03-08T02:15", "from 02:00 to 03:00"),
        ("Pacific/Chatham", "2026-09-27T03:00", "from 02:45 to 03:45"),
    ],
)
def test_a_time_the_clocks_skip_is_refused_inline(
    app: Flask, db: Any, client: FlaskClient, zone: str, wall: str, gap: str
) -> None:
    with time_machine.travel("2026-03-01 12:00", tick=False):
        setup = _in_zone(zone)
        login(client, setup.tenant.email)
        response = _schedule(client, setup.campaign_id, wall)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "does not exist in " + zone.replace("_", " ") in body and gap in body
    assert 'class="error"' in body  # inline, on the field
    assert f"Send at ({zone.replace('_', ' ')} time)" in body
    assert _scheduled_at(db, setup.campaign_id) is None


@pytest.mark.parametrize(
    ("zone", "wall", "utc", "first", "second"),
    [
        ("Europe/Berlin", "2026-10-25T02:30", "2026-10-25 00:30", "CEST", "CET"),
        ("America/New_York", "2026-11-01T01:30", "2026-11-01 05:30", "EDT", "EST"),
    ],
)
def test_a_time_that_happens_twice_takes_the_first_and_says_so(
    app: Flask,
    db: Any,
    client: FlaskClient,
    zone: str,
    wall: str,
    utc: str,
    first: str,
    second: str,
) -> None:
    with time_machine.travel("2026-10-20 12:00", tick=False):
        setup = _in_zone(zone)
        login(client, setup.tenant.email)
        response = _schedule(client, setup.campaign_id, wall)
        assert response.status_code == 302
        page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert _scheduled_at(db, setup.campaign_id) == datetime.fromisoformat(utc)
    clock = wall.split("T")[1]
    assert "happens twice in " + zone.replace("_", " ") in page
    assert f"the first one was taken: {clock} {first}" in page
    assert f"not {clock} {second}" in page


def test_a_berlin_schedule_across_the_spring_change_sends_at_the_local_time(
    app: Flask, db: Any, client: FlaskClient, smtp_sink: SMTPSink
) -> None:
    """Scheduled on Saturday (CET, +01:00) for Sunday 10:00 after the change (CEST, +02:00):
    the campaign starts at 08:00 UTC, not 09:00, and the email arrives."""
    with time_machine.travel("2026-03-28 12:00", tick=False):
        setup = _in_zone("Europe/Berlin", ["李小龍@郵件.example", "ольга@почта.example"])
        login(client, setup.tenant.email)
        assert _schedule(client, setup.campaign_id, "2026-03-29T10:00").status_code == 302
    assert reconciler.reconcile(datetime(2026, 3, 29, 7, 59)).started == 0
    assert reconciler.reconcile(datetime(2026, 3, 29, 8, 0, 30)).started == 1
    drain(app)
    received = smtp_sink.wait_for(2)
    assert sorted(r.unicode_recipients[0] for r in received) == [
        "ольга@почта.example",
        "李小龍@郵件.example",
    ]


def _window(setup: Setup, window: tuple[int, int]) -> None:
    campaign = services.get_campaign(setup.tenant.account_id, setup.campaign_id)
    services.save_campaign(
        setup.tenant.account_id,
        campaign_id=setup.campaign_id,
        name=campaign.name,
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        html_body=campaign.html_body,
        list_ids=services.campaign_list_ids(setup.campaign_id),
        best_hour_window=window,
    )


def _due(db: Any, campaign_id: int) -> dict[str, datetime]:
    rows = db.execute(
        select(Contact.email, Message.due_at)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id)
    ).all()
    return {email: due for email, due in rows}


def _engaged_at(db: Any, setup: Setup, email: str, at: datetime) -> None:
    message_id = message_for(setup.tenant, email)
    for _ in range(3):
        assert engine_gate.record_engagement(setup.tenant.account_id, message_id, "open", at, False)
    db.commit()


def test_a_kolkata_window_is_in_local_hours(app: Flask, db: Any) -> None:
    """Window 09:00-12:00 IST = 03:30-06:30 UTC. A reader engaged in the UTC hour 05 gets it at
    11:00 IST (05:30 UTC); one the engine does not know at 09:00 IST (03:30 UTC)."""
    with time_machine.travel("2026-12-02 12:00", tick=False):
        setup = _in_zone("Asia/Kolkata", ["priya@mail.example", "ravi@mail.example"])
        accounts.update_privacy_settings(setup.tenant.account_id, True, "truncate", 180)
        _engaged_at(db, setup, "priya@mail.example", datetime(2026, 12, 2, 5, 10))
        campaign_id = campaign_with_same_list(setup)
        _window(Setup(setup.tenant, setup.list_id, campaign_id), (9, 12))
        services.start(setup.tenant.account_id, campaign_id)
        due = _due(db, campaign_id)
    assert due["priya@mail.example"] == datetime(2026, 12, 3, 5, 30)  # 11:00 IST
    assert due["ravi@mail.example"] == datetime(2026, 12, 3, 3, 30)  # 09:00 IST


def test_a_berlin_window_keeps_its_local_hours_across_the_spring_change(
    app: Flask, db: Any
) -> None:
    """Started on Saturday evening (CET) with the window 08:00-10:00 Berlin: Sunday is CEST, so
    the window opens at 06:00 UTC, not 07:00; a reader engaged at 07:xx UTC (09:00 CEST)
    gets it at 07:00 UTC."""
    with time_machine.travel("2026-03-28 20:00", tick=False):
        setup = _in_zone("Europe/Berlin", ["jürgen@post.example", "anna@post.example"])
        accounts.update_privacy_settings(setup.tenant.account_id, True, "truncate", 180)
        _engaged_at(db, setup, "jürgen@post.example", datetime(2026, 3, 28, 7, 20))
        campaign_id = campaign_with_same_list(setup)
        _window(Setup(setup.tenant, setup.list_id, campaign_id), (8, 10))
        services.start(setup.tenant.account_id, campaign_id)
        due = _due(db, campaign_id)
    assert due["anna@post.example"] == datetime(2026, 3, 29, 6, 0)  # 08:00 CEST
    assert due["jürgen@post.example"] == datetime(2026, 3, 29, 7, 0)  # 09:00 CEST


def test_the_window_form_names_the_account_zone(app: Flask, db: Any, client: FlaskClient) -> None:
    setup = _in_zone("America/New_York")
    login(client, setup.tenant.email)
    page = client.get(f"/campaigns/{setup.campaign_id}/edit").get_data(as_text=True)
    assert "best hour from (America/New York time)" in page
    assert "until (America/New York time)" in page


def campaign_with_same_list(setup: Setup) -> int:
    """A second campaign to the setup's list (the first one was sent to teach the engine)."""
    campaign = services.save_campaign(
        setup.tenant.account_id,
        campaign_id=None,
        name="Windowed",
        subject="Hello",
        from_name="Shop",
        from_email="news@shop.example",
        html_body="<html><body><p>Hi</p></body></html>",
        list_ids=[setup.list_id],
    )
    return campaign.id
