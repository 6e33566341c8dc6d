"""Account deletion after a confirmed request (30 days, reactivatable), and deletion after a
year of inactivity (one warning 30 days before; activity cancels). Frozen time throughout."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import func, select

from accounts import services as accounts
from accounts.models import Account, Membership, User
from campaigns.models import Campaign, Message
from core import db as core_db
from core.scheduler import run_jobs
from subscribers.models import Contact
from tests.factories import PASSWORD, login, make_tenant
from tests.privacy.helpers import link_in, send_and_track
from tests.smtp_sink import SMTPSink
from tracking.models import TrackingEvent

START = datetime(2026, 1, 10, 12, 0, 0)


def _at(days: float) -> Any:
    return time_machine.travel(START + timedelta(days=days), tick=False)


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(core_db.session.scalar(select(func.count()).select_from(model)) or 0)


def _schedule_deletion(app: Flask, smtp_sink: SMTPSink, email: str) -> Any:
    client = app.test_client()
    login(client, email)
    page = client.get("/account/delete").get_data(as_text=True)
    assert "30 days" in page
    client.post("/account/delete")
    path = link_in(smtp_sink, email, "/account/delete/confirm/")
    assert "Confirm the deletion" in client.get(path).get_data(as_text=True)
    done = client.post(path)
    assert done.status_code == 200 and "will be deleted on" in done.get_data(as_text=True)
    return client


def test_deleted_on_day_31_not_day_29_with_everything_and_lone_users(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with _at(0):
        with app.app_context():
            doomed = make_tenant("owner@doomed.example", "Doomed")
            other = make_tenant("owner@other.example", "Other")
            # A member of both accounts keeps their user; a member of the doomed one only goes.
            accounts.add_member(doomed.account_id, "owner", "both@example.com", "Both", "admin")
            accounts.add_member(other.account_id, "owner", "both@example.com", "Both", "member")
            accounts.add_member(doomed.account_id, "owner", "lone@example.com", "Lone", "member")
        send_and_track(app, smtp_sink, doomed, ["c1@example.org", "c2@example.org"])
        _schedule_deletion(app, smtp_sink, doomed.email)
    with _at(29):
        run_jobs(app)
        assert _count(app, Account) == 2
        client = app.test_client()
        # Login says so and offers reactivation.
        response = client.post("/login", data={"email": doomed.email, "password": PASSWORD})
        assert response.headers["Location"].endswith("/account/reactivate")
        page = client.get("/account/reactivate").get_data(as_text=True)
        assert "scheduled for deletion" in page and "Reactivate the account" in page
    with _at(31):
        smtp_sink.clear()
        results = run_jobs(app)
        assert results["delete-accounts-due"] == 1
        assert run_jobs(app)["delete-accounts-due"] == 0  # twice is harmless
    with app.app_context():
        assert core_db.session.scalars(select(Account.name)).all() == ["Other"]
        users = set(core_db.session.scalars(select(User.email)))
        assert users == {"owner@other.example", "both@example.com"}
        for model in (Contact, Campaign, Message, TrackingEvent):
            assert core_db.session.scalar(select(func.count()).select_from(model)) == 0
        assert core_db.session.scalar(select(func.count()).select_from(Membership)) == 2
    assert smtp_sink.to("owner@doomed.example")  # a last notice


def test_reactivation_on_day_29_keeps_the_account(app: Flask, smtp_sink: SMTPSink) -> None:
    with _at(0):
        with app.app_context():
            tenant = make_tenant()
        _schedule_deletion(app, smtp_sink, tenant.email)
    with _at(29):
        client = app.test_client()
        login(client, tenant.email)
        response = client.post("/account/reactivate")
        assert response.status_code == 302
        assert "/account/reactivate" not in response.headers["Location"]
    with _at(31):
        run_jobs(app)
    with _at(400):
        run_jobs(app)  # a year and more later: inactivity, not the old request, would apply
    with app.app_context():
        account = core_db.session.get(Account, tenant.account_id)
        assert account is not None and account.deletion_due_at is None


def test_reactivation_is_refused_once_the_grace_period_is_over(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with _at(0):
        with app.app_context():
            tenant = make_tenant()
        _schedule_deletion(app, smtp_sink, tenant.email)
    with _at(30.01), app.app_context():
        import pytest

        from core.errors import ValidationError

        with pytest.raises(ValidationError):
            accounts.reactivate_account(tenant.account_id, tenant.user_id, "owner")


def _warnings(smtp_sink: SMTPSink, email: str) -> int:
    return sum(1 for m in smtp_sink.to(email) if "for inactivity" in str(m.message["Subject"]))


def test_inactivity_warning_once_at_11_months_and_deletion_at_12(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with _at(0), app.app_context():
        tenant = make_tenant()
    with _at(334):
        run_jobs(app)
        assert _warnings(smtp_sink, tenant.email) == 0
    with _at(335):
        run_jobs(app)
        run_jobs(app)
    with _at(350):
        run_jobs(app)
    assert _warnings(smtp_sink, tenant.email) == 1
    warning = [m for m in smtp_sink.to(tenant.email) if "inactivity" in str(m.message["Subject"])]
    assert "10 Jan 2027" in str(warning[0].message["Subject"])  # the deletion date (UTC account)
    assert "log in" in warning[0].message.get_body(preferencelist=("plain",)).get_content()
    with _at(364):
        run_jobs(app)
        assert _count(app, Account) == 1
    with _at(365.01):
        assert run_jobs(app)["delete-inactive-accounts"] == 1
        assert _count(app, Account) == 0 and _count(app, User) == 0


def test_activity_after_the_warning_cancels_the_deletion(app: Flask, smtp_sink: SMTPSink) -> None:
    with _at(0), app.app_context():
        tenant = make_tenant()
    with _at(336):
        run_jobs(app)
        assert _warnings(smtp_sink, tenant.email) == 1
    with _at(350):
        login(app.test_client(), tenant.email)
    with _at(366):
        run_jobs(app)
        assert _count(app, Account) == 1
    with _at(350 + 335):  # a new lapse: a new warning, then deletion
        run_jobs(app)
        assert _warnings(smtp_sink, tenant.email) == 2
    with _at(350 + 366):
        run_jobs(app)
        assert _count(app, Account) == 0


def test_a_campaign_sent_counts_as_activity(app: Flask, smtp_sink: SMTPSink) -> None:
    with _at(0), app.app_context():
        tenant = make_tenant()
    with _at(340):
        run_jobs(app)
        send_and_track(app, smtp_sink, tenant, ["reader@example.org"])
    with _at(370):
        run_jobs(app)
        assert _count(app, Account) == 1


def test_late_scheduler_still_gives_30_days_notice(app: Flask, smtp_sink: SMTPSink) -> None:
    with _at(0), app.app_context():
        tenant = make_tenant()
    with _at(500):  # the scheduler was down for months: catch up, but warn first
        results = run_jobs(app)
        assert results["warn-inactive-accounts"] == 1
        assert results["delete-inactive-accounts"] == 0
    with _at(529):
        run_jobs(app)
        assert _count(app, Account) == 1
    with _at(530.01):
        run_jobs(app)
        assert _count(app, Account) == 0
    assert _warnings(smtp_sink, tenant.email) == 1


def _member_with_password(
    app: Flask, smtp_sink: SMTPSink, account_id: int, email: str, name: str, role: str
) -> None:
    """Add a member the way an admin does, and let them choose their password by the link."""
    with app.app_context():
        accounts.add_member(account_id, "owner", email, name, role)
    path = link_in(smtp_sink, email, "/password/reset/")
    response = app.test_client().post(path, data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302


def _words(page: str) -> str:
    return " ".join(page.split())


def test_a_pending_deletion_shows_on_every_page_for_every_member(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    """Issue 19: after a confirmed deletion request the app looked normal. Every signed-in page
    now says when the account goes; owners get the reactivate button, the others whom to ask."""
    with _at(0):
        with app.app_context():
            tenant = make_tenant("zoe@bakery.example", "Bäckerei Ñúñez")
            accounts.update_general_settings(tenant.account_id, "Bäckerei Ñúñez", "1 Main St")
            core_db.session.get(User, tenant.user_id).name = "Zoë Ñúñez"  # type: ignore[union-attr]
            core_db.session.commit()
        _member_with_password(
            app, smtp_sink, tenant.account_id, "li@bakery.example", "李小龍", "admin"
        )
        _member_with_password(
            app, smtp_sink, tenant.account_id, "olga@bakery.example", "Ольга", "member"
        )
        before = app.test_client()
        login(before, tenant.email)
        assert "deletion-banner" not in before.get("/campaigns").get_data(as_text=True)
        _schedule_deletion(app, smtp_sink, tenant.email)
    with _at(27.5):
        for email, role, pages in [
            (tenant.email, "owner", ["/campaigns", "/lists", "/reports", "/settings", "/team"]),
            ("li@bakery.example", "admin", ["/campaigns", "/contacts", "/settings"]),
            ("olga@bakery.example", "member", ["/campaigns", "/lists", "/privacy/requests"]),
        ]:
            client = app.test_client()
            client.post("/login", data={"email": email, "password": PASSWORD})
            for path in pages:
                response = client.get(path)
                assert response.status_code == 200, (role, path)
                page = _words(response.get_data(as_text=True))
                assert 'id="deletion-banner"' in page, (role, path)
                assert (
                    "Bäckerei Ñúñez will be deleted on Monday 9 February 2026 at 12:00 UTC</strong>"
                    " (in 3 days)" in page
                ), (role, path)
                has_button = 'id="banner-reactivate"' in page
                assert has_button == (role == "owner"), (role, path)
                if role != "owner":
                    assert "Only an owner can keep it: Zoë Ñúñez." in page
        admin = app.test_client()
        login(admin, "li@bakery.example")
        refused = admin.post("/account/reactivate", follow_redirects=True).get_data(as_text=True)
        assert "Only an owner can reactivate" in refused
    with _at(28):
        owner = app.test_client()
        login(owner, tenant.email)
        page = owner.get("/lists").get_data(as_text=True)
        assert 'action="/account/reactivate"' in page and 'method="post"' in page
        done = owner.post("/account/reactivate", follow_redirects=True).get_data(as_text=True)
        assert "is reactivated" in done and "deletion-banner" not in done
        member = app.test_client()
        login(member, "olga@bakery.example")
        assert "deletion-banner" not in member.get("/campaigns").get_data(as_text=True)
    with app.app_context():
        account = core_db.session.get(Account, tenant.account_id)
        assert account is not None and account.deletion_due_at is None
