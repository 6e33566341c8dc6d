"""An account's time zone: chosen at sign-up by the browser and under Settings, and used for
every date a marketer sees (pages and emails); storage stays UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts.models import Account
from core import timezones
from subscribers import services as subscribers
from tests.factories import PASSWORD, login, make_tenant
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink


def _zone_of(db: Any, email_domain: str) -> str:
    db.expire_all()
    zones = db.scalars(select(Account.time_zone).where(Account.name == email_domain)).all()
    assert len(zones) == 1
    return str(zones[0])


def _sign_up(client: FlaskClient, name: str, zone: str | None) -> Any:
    data = {"account_name": name, "name": "Zoë Ñúñez", "email": f"zoe@{name}.example"}
    data["password"] = PASSWORD
    data["of_age"] = "y"
    if zone is not None:
        data["time_zone"] = zone
    return client.post("/signup", data=data)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Asia/Kolkata", "Asia/Kolkata"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        (None, "UTC"),  # no script: UTC
        ("", "UTC"),
        ("Mars/Olympus_Mons", "UTC"),  # unknown: UTC, no error
        ("europe/berlin", "UTC"),  # names are exact
        ("../../etc/passwd", "UTC"),
        ('"><script>alert(1)</script>', "UTC"),
        ("Europe/Berlin" + "x" * 500, "UTC"),
    ],
)
def test_signup_takes_the_browser_zone_or_utc(
    app: Flask, db: Any, client: FlaskClient, sent: str | None, stored: str
) -> None:
    response = _sign_up(client, "acme", sent)
    assert response.status_code == 302  # never an error for the zone
    assert _zone_of(db, "acme") == stored


def test_settings_change_the_zone_and_refuse_a_forged_one_inline(
    app: Flask, db: Any, client: FlaskClient
) -> None:
    with app.app_context():
        tenant = make_tenant()
    login(client, tenant.email)
    page = client.get("/settings").get_data(as_text=True)
    assert '<option selected value="UTC">UTC</option>' in page
    assert '<option value="Pacific/Chatham">Pacific/Chatham</option>' in page
    assert "America/Argentina/Buenos Aires" in page  # readable labels
    form = {"general-name": "Shop", "general-postal_address": "1 Main St"}
    saved = client.post("/settings?tab=general", data={**form, "general-time_zone": "Asia/Kolkata"})
    assert saved.status_code == 302
    assert _zone_of(db, "Shop") == "Asia/Kolkata"
    page = client.get("/settings").get_data(as_text=True)
    assert '<option selected value="Asia/Kolkata">' in page
    forged = client.post("/settings?tab=general", data={**form, "general-time_zone": "Nowhere"})
    body = forged.get_data(as_text=True)
    assert forged.status_code == 200
    assert 'class="error" role="alert">Choose a time zone from the list' in body
    assert _zone_of(db, "Shop") == "Asia/Kolkata"  # unchanged


def test_the_zone_list_is_the_zone_database_sorted() -> None:
    names = timezones.zone_names()
    assert list(names) == sorted(names)
    for name in ("UTC", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham", "America/New_York"):
        assert name in names
    assert "localtime" not in names and "Factory" not in names


@pytest.mark.parametrize(
    ("zone", "winter", "summer"),
    [
        ("UTC", "3 Dec 2026, 13:00 UTC", "3 Jul 2026, 13:00 UTC"),
        ("Europe/Berlin", "3 Dec 2026, 14:00 CET", "3 Jul 2026, 15:00 CEST"),
        ("America/New_York", "3 Dec 2026, 08:00 EST", "3 Jul 2026, 09:00 EDT"),
        ("Asia/Kolkata", "3 Dec 2026, 18:30 IST", "3 Jul 2026, 18:30 IST"),
        ("Pacific/Chatham", "4 Dec 2026, 02:45 UTC+13:45", "4 Jul 2026, 01:45 UTC+12:45"),
        ("America/St_Johns", "3 Dec 2026, 09:30 NST", "3 Jul 2026, 10:30 NDT"),
    ],
)
def test_times_are_formatted_with_the_zone_abbreviation(
    zone: str, winter: str, summer: str
) -> None:
    assert timezones.format_datetime(datetime(2026, 12, 3, 13, 0), zone) == winter
    assert timezones.format_datetime(datetime(2026, 7, 3, 13, 0), zone) == summer


def test_pages_show_dates_in_the_account_zone(app: Flask, client: FlaskClient) -> None:
    """A contact added at 20:00 UTC on 2 Dec is added on 3 Dec in Kolkata (01:30 IST)."""
    with time_machine.travel(datetime(2026, 12, 2, 20, 0), tick=False), app.app_context():
        tenant = make_tenant()
        mailing_list = subscribers.create_list(tenant.account_id, "Новости")
        contact = subscribers.add_contact_to_list(
            tenant.account_id, mailing_list.id, "ольга@почта.example", name="Ольга"
        )
        from accounts import services as accounts

        accounts.update_general_settings(tenant.account_id, "Shop", "1 Main St", "Asia/Kolkata")
    login(client, tenant.email)
    contacts = client.get("/contacts").get_data(as_text=True)
    assert "3 Dec 2026" in contacts and "2026-12-02" not in contacts
    detail = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "3 Dec 2026, 01:30 IST" in detail
    assert "UTC" not in detail


def test_the_deletion_email_and_pages_use_the_account_zone(
    app: Flask, client: FlaskClient, smtp_sink: SMTPSink
) -> None:
    """Confirmed at 23:30 UTC on 10 Jan 2027: due 30 days later, 9 Feb 23:30 UTC, which is
    already 10 Feb, 13:15 in Chatham (+13:45 in its summer; the zone database has no letters
    for it, so the offset is written)."""
    with time_machine.travel(datetime(2027, 1, 10, 23, 30), tick=False):
        with app.app_context():
            tenant = make_tenant("李小龍@商店.example")
            from accounts import services as accounts

            accounts.update_general_settings(
                tenant.account_id, "Shop", "1 Main St", "Pacific/Chatham"
            )
        login(client, tenant.email)
        client.post("/account/delete")
        link = next(
            line
            for m in smtp_sink.to(tenant.email)
            for line in m.message.get_body(preferencelist=("plain",)).get_content().split()
            if "/account/delete/confirm/" in line
        )
        done = client.post(path_of(link)).get_data(as_text=True)
        login(client, tenant.email)  # confirming the deletion logged every member out
        delete_page = client.get("/account/delete").get_data(as_text=True)
    notice = [
        m for m in smtp_sink.to(tenant.email) if "will be deleted" in str(m.message["Subject"])
    ]
    assert len(notice) == 1
    subject = str(notice[0].message["Subject"])
    body = notice[0].message.get_body(preferencelist=("plain",)).get_content()
    assert subject == "Shop will be deleted on 10 Feb 2027"
    assert "scheduled for deletion on 10 Feb 2027, 13:15 UTC+13:45" in body
    assert "10 Feb 2027, 13:15 UTC+13:45" in done
    assert "10 Feb 2027, 13:15 UTC+13:45" in delete_page


def test_a_segment_date_is_a_day_of_the_account_zone(
    app: Flask, client: FlaskClient, smtp_sink: SMTPSink
) -> None:
    """ "Added on or after 3 Dec" in Kolkata starts at 2 Dec 18:30 UTC: a contact added at
    20:00 UTC on 2 Dec (01:30 IST on 3 Dec) is in, one added at 18:00 UTC (23:30 IST) is out;
    the campaign to the segment reaches exactly the one."""
    from accounts import services as accounts
    from campaigns import services as campaigns
    from tests.conftest import drain

    with app.app_context():
        tenant = make_tenant()
        accounts.update_general_settings(tenant.account_id, "Shop", "1 Main St", "Asia/Kolkata")
        news = subscribers.create_list(tenant.account_id, "समाचार")
        with time_machine.travel(datetime(2026, 12, 2, 18, 0), tick=False):
            subscribers.add_contact_to_list(tenant.account_id, news.id, "ravi@mail.example")
        with time_machine.travel(datetime(2026, 12, 2, 20, 0), tick=False):
            subscribers.add_contact_to_list(tenant.account_id, news.id, "priya@mail.example")
        rule = {"field": "created_at", "op": "after", "value": "2026-12-03"}
        segment = subscribers.save_segment(tenant.account_id, None, "New", "all", [rule])
        campaign = campaigns.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Welcome",
            subject="Welcome",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<html><body><p>Namaste</p></body></html>",
            list_ids=[],
            segment_ids=[segment.id],
        )
        segment_id, campaign_id = segment.id, campaign.id
    login(client, tenant.email)
    page = client.get(f"/segments/{segment_id}").get_data(as_text=True)
    assert "priya@mail.example" in page and "ravi@mail.example" not in page
    assert client.post(f"/campaigns/{campaign_id}/send", data={"expected": 1}).status_code == 302
    drain(app)
    assert [m.recipients for m in smtp_sink.wait_for(1)] == [["priya@mail.example"]]


def test_the_dashboard_shows_when_campaigns_go_in_the_account_zone(
    app: Flask, client: FlaskClient
) -> None:
    from accounts import services as accounts
    from campaigns import services as campaigns
    from tests.factories import make_campaign, make_list_with_contacts

    with time_machine.travel(datetime(2026, 12, 1, 9, 0), tick=False), app.app_context():
        tenant = make_tenant()
        accounts.update_general_settings(tenant.account_id, "Shop", "1 Main St", "Europe/Berlin")
        list_id = make_list_with_contacts(tenant, ["jürgen@post.example"])
        campaign_id = make_campaign(tenant, list_id, subject="Advent")
        campaigns.schedule(tenant.account_id, campaign_id, datetime(2026, 12, 6, 23, 30))
    login(client, tenant.email)
    for path in ("/dashboard", "/campaigns"):
        page = client.get(path).get_data(as_text=True)
        assert "7 Dec 2026, 00:30 CET" in page  # 23:30 UTC on the 6th is the 7th in Berlin
