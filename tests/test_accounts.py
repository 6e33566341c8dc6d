"""Sign-up, login, logout, password reset by email, roles, cookies and CSRF."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from accounts import services
from tests.factories import PASSWORD, login, make_tenant
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink


def test_signup_logs_in_and_rejects_bad_input_inline(client: Any) -> None:
    bad = client.post(
        "/signup", data={"account_name": "", "name": "A", "email": "nope", "password": "short"}
    )
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert 'class="error"' in page and "nope" in page  # the typed value is kept
    ok = client.post(
        "/signup",
        data={
            "account_name": "Acme",
            "name": "A",
            "email": "a@acme.example",
            "password": PASSWORD,
            "of_age": "y",
        },
    )
    assert ok.status_code == 302
    assert client.get("/dashboard").status_code == 200
    again = client.post(
        "/signup",
        data={
            "account_name": "Acme2",
            "name": "A",
            "email": "A@ACME.example",
            "password": PASSWORD,
            "of_age": "y",
        },
    )
    assert again.status_code == 422
    assert "already uses this address" in again.get_data(as_text=True)


def test_login_logout_and_protected_pages(app: Flask, client: Any) -> None:
    with app.app_context():
        make_tenant("owner@x.example")
    assert client.get("/dashboard").status_code == 302
    wrong = client.post("/login", data={"email": "owner@x.example", "password": "wrong password"})
    assert wrong.status_code == 422 and "Wrong email or password" in wrong.get_data(as_text=True)
    login(client, "owner@x.example")
    assert client.get("/dashboard").status_code == 200
    client.post("/logout")
    assert client.get("/dashboard").status_code == 302


def test_login_refuses_offsite_next(app: Flask, client: Any) -> None:
    with app.app_context():
        make_tenant("owner@x.example")
    response = client.post(
        "/login?next=//evil.example/", data={"email": "owner@x.example", "password": PASSWORD}
    )
    assert response.headers["Location"].startswith("/dashboard")


def test_password_reset_by_email_works_once(app: Flask, client: Any, smtp_sink: SMTPSink) -> None:
    with app.app_context():
        make_tenant("owner@x.example")
    client.post("/password/forgot", data={"email": "nobody@x.example"})
    client.post("/password/forgot", data={"email": "owner@x.example"})
    received = smtp_sink.wait_for(1)
    assert len(received) == 1 and received[0].recipients == ["owner@x.example"]
    link = re.search(r"(http://localhost/password/reset/\S+)", received[0].message.get_content())
    assert link
    path = path_of(link.group(1))
    assert client.get(path).status_code == 200
    response = client.post(
        path, data={"password": "a new long password", "confirm": "a new long password"}
    )
    assert response.status_code == 302
    login(client, "owner@x.example", "a new long password")
    reused = client.post(path, data={"password": "third password!!", "confirm": "third password!!"})
    assert reused.status_code == 302 and "forgot" in reused.headers["Location"]


def test_session_cookie_flags(app_factory: Any) -> None:
    for base_url, secure in [("http://localhost", False), ("https://mail.example", True)]:
        app = app_factory(BASE_URL=base_url)
        client = app.test_client()
        with app.app_context():
            services.sign_up("Co", "N", f"n{int(secure)}@co.example", PASSWORD, of_age=True)
        response = client.post(
            "/login", data={"email": f"n{int(secure)}@co.example", "password": PASSWORD}
        )
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


def test_csrf_is_enforced_on_forms(app_factory: Any) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    response = client.post(
        "/signup",
        data={"account_name": "Acme", "name": "A", "email": "a@acme.example", "password": PASSWORD},
    )
    assert response.status_code == 400


def test_roles_limit_team_and_settings(app: Flask, smtp_sink: SMTPSink) -> None:
    with app.app_context():
        owner = make_tenant("owner@x.example")
        services.add_member(owner.account_id, "owner", "member@x.example", "Mem", "member")
    invite = smtp_sink.wait_for(1)[0]
    assert invite.recipients == ["member@x.example"]
    link = re.search(r"(http://localhost/password/reset/\S+)", invite.message.get_content())
    assert link
    client = app.test_client()
    client.post(
        path_of(link.group(1)), data={"password": "member password", "confirm": "member password"}
    )
    login(client, "member@x.example", "member password")
    assert client.get("/lists").status_code == 200
    assert client.get("/settings").status_code == 403  # members cannot change settings
    assert client.get("/team").status_code == 403
    owner_client = app.test_client()
    login(owner_client, "owner@x.example")
    assert owner_client.get("/team").status_code == 200
    with app.app_context():
        from core.errors import ValidationError

        try:
            services.change_role(owner.account_id, "owner", owner.user_id, "member")
        except ValidationError as exc:
            assert "at least one owner" in exc.message
        else:
            raise AssertionError("the last owner was demoted")
