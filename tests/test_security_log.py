"""The security log (issue 15): every security event of an account is recorded through the
flows that cause it, shown to owners under Settings > Security log (filter by kind, pages,
the account's time zone), never holds a contact's address, and is deleted after its
retention. Everything through HTTP, as a person would use it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import services as accounts
from accounts.audit import apply_retention, record_security_event
from accounts.models import SecurityEvent, SecurityEventKind
from core import db as core_db
from tests.conftest import drain
from tests.factories import PASSWORD, Tenant, login, make_list_with_contacts, make_tenant
from tests.privacy.helpers import link_in, submit, token_of
from tests.smtp_sink import SMTPSink

CONTACTS = ["zoe.nunez@ejemplo.es", "li.xiaolong@example.cn"]
NEW_PASSWORD = "a brand new passphrase"


def _events(app: Flask, account_id: int) -> list[SecurityEvent]:
    with app.app_context():
        found = list(
            core_db.session.scalars(
                select(SecurityEvent)
                .where(SecurityEvent.account_id == account_id)
                .order_by(SecurityEvent.id)
            )
        )
        core_db.session.expunge_all()
        core_db.session.remove()
    return found


def _kinds(app: Flask, account_id: int) -> list[str]:
    return [e.kind for e in _events(app, account_id)]


def _tenant(app: Flask, email: str = "owner@shop.example") -> Tenant:
    with app.app_context():
        tenant = make_tenant(email)
        core_db.session.remove()
    return tenant


def _client(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.77"
    login(client, email, password)
    return client


def test_logins_failures_and_a_lockout_are_logged_for_the_owner_alone(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    app.config.update(LOGIN_LIMITS_PER_ADDRESS="100/minute", LOGIN_LOCKOUT_AFTER=3)
    tenant = _tenant(app)
    visitor = app.test_client()
    visitor.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    answers = []
    for address in (tenant.email, "nobody@nowhere.example"):
        response = visitor.post("/login", data={"email": address, "password": "wrong guess"})
        answers.append((response.status_code, "Wrong email or password." in response.text))
    # Nothing tells the visitor which address exists.
    assert answers[0] == answers[1] == (422, True)
    for _ in range(2):
        visitor.post("/login", data={"email": tenant.email, "password": "wrong guess"})
    drain(app)  # the lockout email
    kinds = _kinds(app, tenant.account_id)
    assert kinds == ["login-failed"] * 3 + ["lockout"]
    failed = _events(app, tenant.account_id)[0]
    assert failed.actor_user_id is None
    assert failed.details == {"network": "198.51.100.0/24", "member": tenant.email}
    # The unknown address left nothing anywhere.
    with app.app_context():
        assert (
            core_db.session.scalar(
                select(SecurityEvent).where(SecurityEvent.account_id != tenant.account_id)
            )
            is None
        )
        core_db.session.remove()

    with time_machine.travel(datetime.now() + timedelta(minutes=20), tick=False):
        client = _client(app, tenant.email)
        page = client.get("/settings/security-log")
    assert page.status_code == 200
    assert _kinds(app, tenant.account_id)[-1] == "login"
    login_event = _events(app, tenant.account_id)[-1]
    assert login_event.actor_user_id == tenant.user_id
    assert login_event.details == {"network": "203.0.113.0/24"}
    text = page.text
    assert "Failed login" in text and "Login locked" in text and "198.51.100.0/24" in text
    assert "nobody@nowhere.example" not in text


def test_team_settings_password_and_sessions_changes_are_logged(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant(app)
    client = _client(app, tenant.email)
    assert (
        client.post(
            "/team", data={"email": "ana@shop.example", "name": "Ana", "role": "member"}
        ).status_code
        == 302
    )
    with app.app_context():
        ana = accounts.user_id_for_email("ana@shop.example")
        core_db.session.remove()
    assert client.post(f"/team/{ana}/role", data={"role": "admin"}).status_code == 302
    assert client.post(f"/team/{ana}/remove").status_code == 302
    client.post(
        "/settings?tab=privacy",
        data={
            "privacy-individual_tracking": "y",
            "privacy-ip_handling": "drop",
            "privacy-event_retention_days": "90",
        },
    )
    client.post("/settings?tab=advanced", data={"advanced-submit": "1"})  # engine: leave
    other = _client(app, tenant.email)
    assert client.post("/me/sessions/end-others").status_code == 302
    assert (
        client.post(
            "/me/password",
            data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ).status_code
        == 302
    )
    del other

    events = {e.kind: e for e in _events(app, tenant.account_id)}
    assert events["member-added"].details == {
        "user_id": ana,
        "member": "ana@shop.example",
        "role": "member",
    }
    assert events["member-added"].actor_user_id == tenant.user_id
    assert events["role-changed"].details["from"] == "member"
    assert events["role-changed"].details["to"] == "admin"
    assert events["member-removed"].details["role"] == "admin"
    kinds = _kinds(app, tenant.account_id)
    settings = [e for e in _events(app, tenant.account_id) if e.kind == "settings-changed"]
    assert [s.details["tab"] for s in settings] == ["privacy", "advanced"]
    assert settings[0].details["changed"] == [
        "individual_tracking",
        "ip_handling",
        "event_retention_days",
    ]
    assert settings[0].details["ip_handling.from"] == "truncate"
    assert settings[0].details["ip_handling.to"] == "drop"
    assert settings[1].details["engine_participation.to"] is False
    assert settings[0].actor_user_id == tenant.user_id
    assert events["sessions-revoked"].details == {"sessions": 1, "everywhere": True}
    assert "password-changed" in kinds

    page = client.get("/settings/security-log").text
    for label in ("Member added", "Role changed", "Settings changed", "Password changed"):
        assert label in page
    assert "ana@shop.example: member → admin" in page
    assert "Privacy tab: individual tracking: False → True" in page


def test_exports_and_data_requests_are_logged_by_id_and_count_never_by_address(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant(app)
    with app.app_context():
        list_id = make_list_with_contacts(tenant, CONTACTS)
        core_db.session.remove()
    client = _client(app, tenant.email)
    export = client.get(f"/lists/{list_id}/export.csv")
    assert export.status_code == 200 and CONTACTS[0] in export.text
    assert client.get(f"/lists/{list_id}/export.json").status_code == 200
    # A person asks for a copy of their data through the public form and confirms it.
    app.config["DATA_REQUEST_EMAIL_WINDOW"] = 0
    public = app.test_client()
    assert submit(public, CONTACTS[1], "access").status_code == 200
    confirm = link_in(smtp_sink, CONTACTS[1], "/privacy/confirm/")
    assert public.post(f"/privacy/confirm/{token_of(confirm)}").status_code == 200

    exports = [e for e in _events(app, tenant.account_id) if e.kind == "contacts-exported"]
    assert [e.details for e in exports] == [
        {"list_id": list_id, "format": "csv", "rows": 2},
        {"list_id": list_id, "format": "json", "rows": 2},
    ]
    assert all(e.actor_user_id == tenant.user_id for e in exports)
    fulfilled = [e for e in _events(app, tenant.account_id) if e.kind == "data-request-fulfilled"]
    assert len(fulfilled) == 1 and fulfilled[0].details["request"] == "access"
    assert fulfilled[0].actor_user_id is None

    page = client.get("/settings/security-log")
    body = page.text.lower()
    stored = repr([e.details for e in _events(app, tenant.account_id)]).lower()
    for address in CONTACTS:
        assert address not in body and address not in stored
        assert address.split("@")[0] not in stored
    assert f"list #{list_id} as CSV, 2 rows" in page.text


def test_account_deletion_requested_confirmed_and_cancelled_are_logged(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant(app)
    client = _client(app, tenant.email)
    assert client.post("/account/delete").status_code == 302
    path = link_in(smtp_sink, tenant.email, "/account/delete/confirm/")
    assert client.post(path).status_code == 200
    client = _client(app, tenant.email)
    assert client.post("/account/reactivate").status_code == 302
    kinds = _kinds(app, tenant.account_id)
    assert kinds[kinds.index("deletion-requested") :][:3] == [
        "deletion-requested",
        "deletion-confirmed",
        "login",
    ]
    assert kinds[-1] == "deletion-cancelled"


def test_only_owners_see_the_log_filtered_and_paged_in_the_account_zone(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant = _tenant(app)
    with app.app_context():
        accounts.update_general_settings(tenant.account_id, "Shop", "1 Main St", "Asia/Tokyo")
        accounts.add_member(tenant.account_id, "owner", "adm@shop.example", "Adm", "admin")
        with time_machine.travel(datetime(2026, 7, 1, 15, 30), tick=False):
            for number in range(55):
                record_security_event(
                    tenant.account_id,
                    tenant.user_id,
                    SecurityEventKind.CONTACTS_EXPORTED,
                    {"segment_id": number, "format": "csv", "rows": number},
                )
        core_db.session.commit()
        core_db.session.remove()
    owner = _client(app, tenant.email)
    first = owner.get("/settings/security-log?kind=contacts-exported")
    assert first.status_code == 200
    assert "55 events · page 1 of 2" in first.text
    assert "1 Jul 2026, 00:30 JST" not in first.text  # UTC 15:30 is 00:30 the next day
    assert "2 Jul 2026, 00:30 JST" in first.text
    assert "segment #54 as CSV, 54 rows" in first.text  # newest first
    second = owner.get("/settings/security-log?kind=contacts-exported&page=2")
    assert "segment #0 as CSV, 0 rows" in second.text
    assert "Login" not in second.text.split("<tbody>")[1]
    logins = owner.get("/settings/security-log?kind=login")
    assert "1 event" in logins.text and "segment #" not in logins.text
    # Admins and members are sent away; no tab for them either.
    with app.app_context():
        from accounts.models import User

        adm = core_db.session.scalar(select(User).where(User.email == "adm@shop.example"))
        assert adm is not None
        adm.password_hash = accounts._hasher.hash(PASSWORD)
        core_db.session.commit()
        core_db.session.remove()
    admin = _client(app, "adm@shop.example")
    refused = admin.get("/settings/security-log")
    assert refused.status_code == 403
    assert "Security log" not in admin.get("/settings").text
    assert "Security log" in owner.get("/settings").text


def test_entries_older_than_the_retention_are_deleted(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _tenant(app)
    with app.app_context():
        for when in (datetime(2025, 1, 1), datetime(2026, 6, 1)):
            with time_machine.travel(when, tick=False):
                record_security_event(tenant.account_id, None, SecurityEventKind.LOGIN_FAILED)
        core_db.session.commit()
        assert apply_retention(datetime(2026, 7, 1)) == 1
        assert apply_retention(datetime(2026, 7, 1)) == 0
        left: Any = list(core_db.session.scalars(select(SecurityEvent.at)))
        core_db.session.remove()
    assert left == [datetime(2026, 6, 1)]


def test_details_refuse_anything_but_flat_scalars(app: Flask, smtp_sink: SMTPSink) -> None:
    import pytest

    tenant = _tenant(app)
    with app.app_context(), pytest.raises(TypeError):
        record_security_event(
            tenant.account_id, None, SecurityEventKind.LOGIN, {"contact": {"email": "x@y.z"}}
        )
