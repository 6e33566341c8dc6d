"""Server-side sessions (issue 15): a cookie saved before logout, a password change or reset,
a removal or an account's deletion stops working at once; ids are never reused; the Sessions
and password pages. Everything through HTTP, with cookies replayed as an attacker would."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import services
from accounts.models import Account, Membership, User, UserSession
from campaigns.models import Campaign
from core import db as core_db
from subscribers.models import Contact
from tests.factories import PASSWORD, login, make_campaign, make_list_with_contacts, make_tenant
from tests.privacy.helpers import link_in
from tests.smtp_sink import SMTPSink

NEW_PASSWORD = "Zoë's ñew pässword 李小龍"
#: Tables whose ids reach cookies, links or tokens (never reused on SQLite).
TOKEN_TABLES = (
    "accounts",
    "users",
    "memberships",
    "user_sessions",
    "contacts",
    "signup_confirmations",
    "campaigns",
    "links",
    "messages",
    "senders",
    "privacy_requests",
    "privacy_downloads",
)
START = datetime(2026, 3, 2, 9, 0, 0)


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _replay(app: Flask, cookie: str) -> FlaskClient:
    """A new browser holding a copy of a saved session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def _signed_in(client: FlaskClient) -> bool:
    response = client.get("/dashboard")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    return False


def _browser(app: Flask, remote_addr: str = "127.0.0.1", agent: str = "") -> FlaskClient:
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": remote_addr, "HTTP_USER_AGENT": agent})
    return client


def _logged_in_client(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    login(client, email, password)
    assert _signed_in(client)
    return client


def _signup(client: FlaskClient, email: str, account: str) -> None:
    response = client.post(
        "/signup",
        data={
            "account_name": account,
            "name": "Ольга",
            "email": email,
            "password": PASSWORD,
            "of_age": "y",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def _schedule_deletion(app: Flask, smtp_sink: SMTPSink, client: FlaskClient, email: str) -> None:
    client.post("/account/delete")
    path = link_in(smtp_sink, email, "/account/delete/confirm/")
    done = client.post(path)
    assert done.status_code == 200 and "will be deleted on" in done.get_data(as_text=True)


# --- The high finding: a cookie kept past an account's deletion ---------------------------------


def test_cookie_of_a_deleted_account_never_opens_the_next_signup(app: Flask) -> None:
    first = app.test_client()
    _signup(first, "zoe.nunez@ejemplo.es", "Zoë Ñúñez SL")
    saved = _cookie(first)
    with app.app_context():
        old_user = core_db.session.scalar(select(User).where(User.email == "zoe.nunez@ejemplo.es"))
        assert old_user is not None
        old_ids = (old_user.id, old_user.memberships[0].account_id)
        assert services.delete_account_permanently(old_ids[1], "test")
    second = app.test_client()
    _signup(second, "li.xiaolong@例子.cn", "李小龍 Trading")
    with app.app_context():
        new_user = core_db.session.scalar(select(User).where(User.email.like("li.xiaolong@%")))
        assert new_user is not None
        new_ids = (new_user.id, new_user.memberships[0].account_id)
    # Ids are never reused (SQLite AUTOINCREMENT, PostgreSQL sequences) ...
    assert new_ids[0] > old_ids[0] and new_ids[1] > old_ids[1]
    # ... and the cookie is not trusted for its ids anyway: the old one opens nothing.
    thief = _replay(app, saved)
    assert not _signed_in(thief)
    assert "李小龍" not in thief.get("/settings", follow_redirects=True).get_data(as_text=True)
    assert _signed_in(second)


def test_a_cookie_naming_ids_instead_of_a_session_is_not_trusted(app: Flask) -> None:
    """Cookies of the old format (user and account ids, correctly signed) log nobody in."""
    with app.app_context():
        tenant = make_tenant("victim@shop.example")
    forger = app.test_client()
    with forger.session_transaction() as cookie_session:
        cookie_session["user_id"] = tenant.user_id
        cookie_session["account_id"] = tenant.account_id
        cookie_session["sid"] = "guessed-" + "A" * 43
    assert not _signed_in(forger)


@pytest.mark.parametrize("table", [Account, User, Membership, UserSession, Contact, Campaign])
def test_ids_are_not_reused_after_the_highest_row_is_deleted(app: Flask, table: Any) -> None:
    def populate(email: str, name: str) -> Any:
        tenant = make_tenant(email, name)
        list_id = make_list_with_contacts(tenant, [f"ольга@{name.lower()}.example"])
        make_campaign(tenant, list_id)
        login(app.test_client(), email)
        return tenant

    with app.app_context():
        populate("first@shop.example", "First")
        last = populate("last@shop.example", "Last")
        highest = core_db.session.scalar(select(table.id).order_by(table.id.desc()).limit(1))
        assert highest is not None
        services.delete_account_permanently(last.account_id, "test")
        assert core_db.session.scalar(select(table.id).where(table.id == highest)) is None
        populate("next@shop.example", "Next")
        newest = core_db.session.scalar(select(table.id).order_by(table.id.desc()).limit(1))
        assert newest is not None and newest > highest


# --- A cookie saved before each event stops working at once -------------------------------------


def test_a_cookie_saved_before_logout_stops_working(app: Flask) -> None:
    with app.app_context():
        make_tenant("owner@shop.example")
    client = _logged_in_client(app, "owner@shop.example")
    saved = _cookie(client)
    response = client.post("/logout")
    assert response.status_code == 302
    assert not _signed_in(client)
    assert not _signed_in(_replay(app, saved))


def test_a_cookie_saved_before_a_password_reset_stops_working(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        make_tenant("owner@shop.example")
    laptop = _logged_in_client(app, "owner@shop.example")
    phone = _logged_in_client(app, "owner@shop.example")
    saved = _cookie(laptop)
    anonymous = app.test_client()
    anonymous.post("/password/forgot", data={"email": "owner@shop.example"})
    path = link_in(smtp_sink, "owner@shop.example", "/password/reset/")
    done = anonymous.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert not _signed_in(laptop) and not _signed_in(phone)
    assert not _signed_in(_replay(app, saved))
    assert _signed_in(_logged_in_client(app, "owner@shop.example", NEW_PASSWORD))


def test_a_cookie_saved_before_removal_from_the_account_stops_working(app: Flask) -> None:
    with app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        other = make_tenant("owner@other.example", "Other")
        services.add_member(shop.account_id, "owner", "olga@shop.example", "Ольга", "admin")
        services.add_member(other.account_id, "owner", "olga@shop.example", "Ольга", "member")
        olga = core_db.session.scalar(select(User).where(User.email == "olga@shop.example"))
        assert olga is not None
        olga.password_hash = services._hasher.hash(PASSWORD)
        core_db.session.commit()
    in_shop = _logged_in_client(app, "olga@shop.example")  # the first membership: Shop
    assert "Shop" in in_shop.get("/team").get_data(as_text=True)
    saved = _cookie(in_shop)
    owner = _logged_in_client(app, "owner@shop.example")
    assert owner.post(f"/team/{olga.id}/remove").status_code == 302
    assert not _signed_in(in_shop)
    assert not _signed_in(_replay(app, saved))
    # Logging in again enters the account she still belongs to, as a member.
    again = _logged_in_client(app, "olga@shop.example")
    assert "Member of Other" in again.get("/dashboard").get_data(as_text=True)


def test_a_cookie_saved_before_the_account_deletion_stops_working_and_reactivation_works(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        services.add_member(tenant.account_id, "owner", "member@shop.example", "Mem", "member")
        member = core_db.session.scalar(select(User).where(User.email == "member@shop.example"))
        assert member is not None
        member.password_hash = services._hasher.hash(PASSWORD)
        core_db.session.commit()
    owner = _logged_in_client(app, "owner@shop.example")
    teammate = _logged_in_client(app, "member@shop.example")
    saved_owner, saved_member = _cookie(owner), _cookie(teammate)
    _schedule_deletion(app, smtp_sink, owner, "owner@shop.example")
    for client in (owner, teammate, _replay(app, saved_owner), _replay(app, saved_member)):
        assert client.get("/lists").status_code == 302
        assert "/login" in client.get("/lists").headers["Location"]
    # During the grace period a login leads to reactivation; pages stay readable with the
    # deletion banner, and any change leads back to reactivation.
    back = app.test_client()
    response = back.post("/login", data={"email": "owner@shop.example", "password": PASSWORD})
    assert response.headers["Location"].endswith("/account/reactivate")
    for path in ("/dashboard", "/lists", "/settings", "/team"):
        page = back.get(path)
        assert page.status_code == 200, path
        assert 'id="deletion-banner"' in page.get_data(as_text=True), path
    refused = back.post("/lists", data={"name": "Not now"})
    assert refused.status_code == 303 and refused.headers["Location"].endswith(
        "/account/reactivate"
    )
    assert back.get("/me/sessions").status_code == 200  # one's own security stays reachable
    member_back = _logged_in_client_pending(app, "member@shop.example")
    assert 'id="deletion-banner"' in member_back.get("/lists").get_data(as_text=True)
    assert member_back.post("/lists", data={"name": "Nor now"}).status_code == 303
    assert back.post("/account/reactivate").status_code == 302
    assert back.get("/lists").status_code == 200
    assert member_back.get("/lists").status_code == 200


def _logged_in_client_pending(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_a_password_change_ends_other_sessions_and_rotates_this_one(app: Flask) -> None:
    with app.app_context():
        make_tenant("owner@shop.example")
    laptop = _logged_in_client(app, "owner@shop.example")
    phone = _logged_in_client(app, "owner@shop.example")
    before = _cookie(laptop)
    wrong = laptop.post(
        "/me/password",
        data={
            "current_password": "not it at all",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422
    assert "not your current password" in wrong.get_data(as_text=True)
    short = laptop.post(
        "/me/password", data={"current_password": PASSWORD, "password": "short", "confirm": "short"}
    )
    assert short.status_code == 422 and 'class="error"' in short.get_data(as_text=True)
    assert _signed_in(phone)  # refusals change nothing
    done = laptop.post(
        "/me/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/me/sessions")
    assert _signed_in(laptop)
    assert _cookie(laptop) != before
    assert not _signed_in(_replay(app, before))
    assert not _signed_in(phone)
    bad = app.test_client().post(
        "/login", data={"email": "owner@shop.example", "password": PASSWORD}
    )
    assert bad.status_code == 422
    _logged_in_client(app, "owner@shop.example", NEW_PASSWORD)


def test_a_role_change_counts_from_the_next_request(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        services.add_member(tenant.account_id, "owner", "admin@shop.example", "Adm", "admin")
        admin = core_db.session.scalar(select(User).where(User.email == "admin@shop.example"))
        assert admin is not None
        admin.password_hash = services._hasher.hash(PASSWORD)
        core_db.session.commit()
    demoted = _logged_in_client(app, "admin@shop.example")
    assert demoted.get("/team").status_code == 200
    owner = _logged_in_client(app, "owner@shop.example")
    owner.post(f"/team/{admin.id}/role", data={"role": "member"})
    refused = demoted.get("/team")
    assert refused.status_code == 403  # signed in, but no longer an admin
    assert demoted.get("/dashboard").status_code == 200


# --- The Sessions page ------------------------------------------------------------------------


def test_sessions_page_lists_ends_one_and_logs_out_everywhere_else(app: Flask) -> None:
    with app.app_context():
        make_tenant("owner@shop.example")
        make_tenant("other@else.example", "Else")
    with time_machine.travel(START, tick=False):
        laptop = _browser(app, "203.0.113.77", "Mozilla/5.0 (X11; Linux)")
        login(laptop, "owner@shop.example")
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        phone = _browser(app, "2001:db8:1234:5678::9", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)")
        login(phone, "owner@shop.example")
        tablet = _browser(app, agent="Mozilla/5.0 (iPad)")
        login(tablet, "owner@shop.example")
        stranger = _logged_in_client(app, "other@else.example")
        page = laptop.get("/me/sessions").get_data(as_text=True)
        rows = re.findall(r'<tr data-session="(\d+)">(.*?)</tr>', page, re.S)
        assert len(rows) == 3
        assert "203.0.113.0/24" in page and "2001:db8:1234::/48" in page
        assert "203.0.113.77" not in page and "5678" not in page  # only the network is kept
        this = [sid for sid, row in rows if "this session" in row]
        assert len(this) == 1 and "Computer" in dict(rows)[this[0]]
        assert "2026-03-02 09:00 UTC" in page
        phone_id = next(sid for sid, row in rows if "Phone or tablet" in row and "2001:db8" in row)
        # Another person's session cannot be ended from here.
        with app.app_context():
            strangers = core_db.session.scalars(
                select(UserSession.id).join(User).where(User.email == "other@else.example")
            ).all()
        laptop.post(f"/me/sessions/{strangers[0]}/end")
        assert _signed_in(stranger)
        ended = laptop.post(f"/me/sessions/{phone_id}/end", follow_redirects=True)
        assert "That session is logged out." in ended.get_data(as_text=True)
        assert not _signed_in(phone) and _signed_in(tablet) and _signed_in(laptop)
        assert laptop.post(f"/me/sessions/{this[0]}/end").status_code == 302
        assert _signed_in(laptop)  # this session ends by logging out, not from the list
        everywhere = laptop.post("/me/sessions/end-others", follow_redirects=True)
        assert "Logged out everywhere else (1 session)." in everywhere.get_data(as_text=True)
        assert not _signed_in(tablet) and _signed_in(laptop) and _signed_in(stranger)
        after = laptop.get("/me/sessions").get_data(as_text=True)
        assert len(re.findall(r"<tr data-session=", after)) == 1
        assert "This is your only session." in after


def test_sessions_expire_when_idle_or_too_old_and_are_touched_once_a_minute(app: Flask) -> None:
    with app.app_context():
        make_tenant("owner@shop.example")
    idle = app.config["SESSION_IDLE_TIMEOUT"]
    with time_machine.travel(START, tick=False):
        client = _logged_in_client(app, "owner@shop.example")
    with time_machine.travel(START + timedelta(seconds=30), tick=False):
        assert _signed_in(client)
    with app.app_context():
        row = core_db.session.scalars(select(UserSession)).one()
        assert row.last_seen_at == START  # not written again within a minute
    # Used every few days, it lives until SESSION_MAX_AGE; idle longer, it ends.
    moment = START
    while moment + timedelta(seconds=idle - 60) < START + timedelta(
        seconds=app.config["SESSION_MAX_AGE"]
    ):
        moment += timedelta(seconds=idle - 60)
        with time_machine.travel(moment, tick=False):
            if moment < START + timedelta(seconds=app.config["SESSION_MAX_AGE"]):
                assert _signed_in(client), moment
    with time_machine.travel(START + timedelta(seconds=app.config["SESSION_MAX_AGE"]), tick=False):
        assert not _signed_in(client)
    with time_machine.travel(START + timedelta(days=40), tick=False):
        other = _logged_in_client(app, "owner@shop.example")
    with time_machine.travel(START + timedelta(days=40, seconds=idle), tick=False):
        assert not _signed_in(other)


def test_the_cookie_carries_only_a_random_session_id(app: Flask) -> None:
    with app.app_context():
        make_tenant("zoe@ejemplo.es")
    client = _logged_in_client(app, "zoe@ejemplo.es")
    payload = _cookie(client).split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(data) <= {"sid", "csrf_token"}  # the CSRF token is random too
    assert len(data["sid"]) >= 43  # 256 bits
    assert "zoe" not in json.dumps(data) and "ejemplo" not in json.dumps(data)
    with app.app_context():
        stored = core_db.session.scalars(select(UserSession.token_hash)).one()
    assert data["sid"] not in stored  # only its hash is kept


def test_ended_sessions_are_purged_after_thirty_days(app: Flask) -> None:
    from core.scheduler import run_jobs

    with app.app_context():
        make_tenant("owner@shop.example")
    with time_machine.travel(START, tick=False):
        client = _logged_in_client(app, "owner@shop.example")
        client.post("/logout")
        _logged_in_client(app, "owner@shop.example")
    with time_machine.travel(START + timedelta(days=29), tick=False):
        run_jobs(app)
        with app.app_context():
            assert len(core_db.session.scalars(select(UserSession)).all()) == 2
    with time_machine.travel(START + timedelta(days=31), tick=False):
        run_jobs(app)
        with app.app_context():
            assert len(core_db.session.scalars(select(UserSession)).all()) == 1


def test_migration_0307_keeps_every_row_on_an_existing_sqlite_database(
    db_backend: str, tmp_path: Any
) -> None:
    """Rebuilding users, accounts and memberships must not cascade into their children."""
    if db_backend != "sqlite":
        pytest.skip("the rebuild happens on SQLite only")
    import sqlite3

    from core.migrate import upgrade

    path = tmp_path / "existing.sqlite3"
    upgrade(f"sqlite:///{path}", "0207")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO accounts (id, name, postal_address, created_at, individual_tracking, "
            "ip_handling, event_retention_days, engine_participation, last_activity_at) "
            "VALUES (7, 'Zoë Ñúñez SL', '', '2026-01-01', 0, 'truncate', 180, 1, '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO users (id, email, name, password_hash, is_platform_admin, created_at) "
            "VALUES (9, 'zoe@ejemplo.es', 'Zoë', 'x', 0, '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO memberships (id, account_id, user_id, role, created_at) "
            "VALUES (3, 7, 9, 'owner', '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO mailing_lists (account_id, name, description, created_at) "
            "VALUES (7, 'Новости', '', '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO contacts (id, account_id, email, name, attributes, source, created_at, "
            "updated_at) VALUES (5, 7, 'li@例子.cn', '李小龍', '{}', 'manual', '2026-01-01', "
            "'2026-01-01')"
        )
        indexes_before = set(
            conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        )
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        for table in ("accounts", "users", "memberships", "mailing_lists", "contacts"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,), table  # noqa: S608
        # Every index comes back, the expression and partial ones included.
        indexes_after = set(
            conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        )
        # 0323 widened this one on purpose: a unique index of a partitioned table (PostgreSQL)
        # must hold the partition key, and SQLite keeps the same definition.
        redefined = {"uq_tracking_events_hit_uid"}
        assert {(n, s) for n, s in indexes_before if n not in redefined} <= indexes_after
        assert redefined <= {name for name, _ in indexes_after}
        assert ("ix_contacts_email_lower",) in {(name,) for name, _ in indexes_after}
        for table in TOKEN_TABLES:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            assert "AUTOINCREMENT" in sql[0], table
        conn.execute("DELETE FROM accounts WHERE id = 7")
        conn.execute(
            "INSERT INTO accounts (name, postal_address, created_at, individual_tracking, "
            "ip_handling, event_retention_days, engine_participation, last_activity_at) "
            "VALUES ('Next', '', '2026-01-02', 0, 'truncate', 180, 1, '2026-01-02')"
        )
        assert conn.execute("SELECT max(id) FROM accounts").fetchone() == (8,)
