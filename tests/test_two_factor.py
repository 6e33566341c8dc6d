"""Second factor (issue 15): TOTP enrolment confirmed by a first code, a login in two steps
whose half-done state lives on the server, wrong codes refused and throttled, a code accepted
once, recovery codes shown once and usable once, turning it off with the password, and the
account setting that requires it of every member. Through HTTP, with frozen time."""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import services
from accounts.models import LoginChallenge, RecoveryCode, TotpCredential, User
from core import db as core_db
from tests.factories import PASSWORD, make_tenant

EMAIL = "zoe.nunez@ejemplo.es"
START = datetime(2026, 3, 2, 9, 0, 10)  # 10 s into a 30-second step


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def owner(app: Flask, clock: Any) -> int:
    with app.app_context():
        return make_tenant(EMAIL, "Zoë Ñúñez SL").account_id


def _code(secret: str, at: datetime | None = None) -> str:
    return pyotp.TOTP(secret).at((at or datetime.now(UTC)).replace(tzinfo=UTC))


def _signed_in(client: FlaskClient) -> bool:
    response = client.get("/dashboard")
    if response.status_code == 200:
        return True
    assert response.status_code in (302, 303), response.status_code
    return False


def _password_step(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"email": email, "password": password})


def _log_in_plain(app: Flask, email: str = EMAIL) -> FlaskClient:
    client = app.test_client()
    response = _password_step(client, email)
    assert response.status_code == 302 and "/login/code" not in response.headers["Location"]
    return client


def _enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Set up TOTP as the person would: read the key from the page, confirm with a code."""
    page = client.get("/me/two-factor/setup")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', html)
    assert secret, html
    key = secret.group(1).replace(" ", "")
    done = client.post("/me/two-factor/setup", data={"code": _code(key)})
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", done.get_data(as_text=True))
    assert len(codes) == 10
    return key, codes


def _cookie_payload(client: FlaskClient) -> dict[str, Any]:
    """The Flask session cookie's (signed, readable) payload, as anyone holding it sees it."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    value = cookie.value
    compressed = value.startswith(".")
    body = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return dict(json.loads(zlib.decompress(raw) if compressed else raw))


def test_enrolment_is_confirmed_by_a_code_and_login_then_takes_two_steps(
    app: Flask, owner: int, clock: Any
) -> None:
    client = _log_in_plain(app)
    page = client.get("/me/two-factor/setup").get_data(as_text=True)
    # The QR code is drawn in the page itself (inline SVG), nothing is fetched from elsewhere.
    assert "<svg" in page and "otpauth" not in page.split("<svg")[0]
    assert not re.search(r"<img[^>]+src=\"https?://", page)
    key = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page)
    assert key
    secret = key.group(1).replace(" ", "")

    wrong = client.post("/me/two-factor/setup", data={"code": "000000"})
    assert wrong.status_code == 422
    assert "That code is not right." in wrong.get_data(as_text=True)
    # Not confirmed: a login still takes the password alone.
    _log_in_plain(app)

    confirmed = client.post("/me/two-factor/setup", data={"code": _code(secret)})
    assert confirmed.status_code == 200
    assert "shown only this once" in confirmed.get_data(as_text=True)
    assert _signed_in(client)  # the browser that enrolled stays logged in
    with app.app_context():
        hashes = core_db.session.scalars(select(RecoveryCode.code_hash)).all()
        assert len(hashes) == 10 and all(h.startswith("$argon2id$") for h in hashes)

    clock.shift(30)
    browser = app.test_client()
    first = _password_step(browser)
    assert first.status_code == 302 and "/login/code" in first.headers["Location"]
    # Half logged in: nothing but the code page, and the cookie names no user or account.
    assert not _signed_in(browser)
    assert set(_cookie_payload(browser)) == {"challenge"}
    assert browser.get("/login/code").status_code == 200
    second = browser.post("/login/code", data={"code": _code(secret)})
    assert second.status_code == 302 and second.headers["Location"].endswith("/dashboard")
    assert _signed_in(browser)
    assert "sid" in _cookie_payload(browser) and "challenge" not in _cookie_payload(browser)
    with app.app_context():
        assert core_db.session.scalar(select(LoginChallenge)) is None


def test_a_wrong_code_is_refused_and_a_code_is_accepted_once(
    app: Flask, owner: int, clock: Any
) -> None:
    secret, _codes = _enrol(_log_in_plain(app))
    clock.shift(30)
    first = app.test_client()
    _password_step(first)
    refused = first.post("/login/code", data={"code": "123456"})
    assert refused.status_code == 422
    assert "That code is not right." in refused.get_data(as_text=True)
    assert not _signed_in(first)
    code = _code(secret)
    assert first.post("/login/code", data={"code": code}).status_code == 302
    assert _signed_in(first)

    # The same code again within its window (an eavesdropper replaying it) is refused...
    clock.shift(5)
    replay = app.test_client()
    _password_step(replay)
    assert replay.post("/login/code", data={"code": code}).status_code == 422
    assert not _signed_in(replay)
    # ... and so is the previous step's code, still inside the drift window.
    previous = _code(secret, datetime.now(UTC) - timedelta(seconds=30))
    assert replay.post("/login/code", data={"code": previous}).status_code == 422
    # The next step's code works.
    clock.shift(30)
    assert replay.post("/login/code", data={"code": _code(secret)}).status_code == 302
    assert _signed_in(replay)


def test_a_code_from_one_step_of_drift_is_accepted_but_not_two(
    app: Flask, owner: int, clock: Any
) -> None:
    secret, _codes = _enrol(_log_in_plain(app))
    clock.shift(300)
    client = app.test_client()
    _password_step(client)
    too_old = _code(secret, datetime.now(UTC) - timedelta(seconds=60))
    assert client.post("/login/code", data={"code": too_old}).status_code == 422
    drifted = _code(secret, datetime.now(UTC) + timedelta(seconds=30))
    assert client.post("/login/code", data={"code": drifted}).status_code == 302


def test_wrong_codes_are_throttled_like_passwords(app: Flask, owner: int, clock: Any) -> None:
    app.config.update(LOGIN_LIMITS_PER_ADDRESS="3/minute")
    secret, _codes = _enrol(_log_in_plain(app))
    client = app.test_client()
    _password_step(client)
    for _ in range(3):
        assert client.post("/login/code", data={"code": "111111"}).status_code == 422
    clock.shift(30)
    throttled = client.post("/login/code", data={"code": _code(secret)})
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed attempts." in throttled.get_data(as_text=True)
    assert not _signed_in(client)
    # The wrong codes counted for the address: the password step is throttled too.
    assert _password_step(app.test_client()).status_code == 429
    clock.shift(61)
    assert client.post("/login/code", data={"code": _code(secret)}).status_code == 302


def test_too_many_wrong_codes_end_the_half_done_login(app: Flask, owner: int, clock: Any) -> None:
    _enrol(_log_in_plain(app))
    client = app.test_client()
    _password_step(client)
    for _ in range(4):
        assert client.post("/login/code", data={"code": "222222"}).status_code == 422
    fifth = client.post("/login/code", data={"code": "222222"})
    assert fifth.status_code == 302 and fifth.headers["Location"].endswith("/login")
    assert client.get("/login/code").status_code == 302
    with app.app_context():
        assert core_db.session.scalar(select(LoginChallenge)) is None


def test_the_half_done_login_expires_and_does_not_survive_a_password_change(
    app: Flask, owner: int, clock: Any
) -> None:
    secret, _codes = _enrol(_log_in_plain(app))
    late = app.test_client()
    _password_step(late)
    clock.shift(301)
    expired = late.post("/login/code", data={"code": _code(secret)})
    assert expired.status_code == 302 and "/login" in expired.headers["Location"]
    assert not _signed_in(late)

    # A password given before a change of password must not complete a login afterwards.
    stale = app.test_client()
    _password_step(stale)
    with app.app_context():
        user_id = core_db.session.scalar(select(User.id).where(User.email == EMAIL))
        assert user_id is not None
        services.change_password(user_id, PASSWORD, "a new and longer password")
    clock.shift(30)
    assert stale.post("/login/code", data={"code": _code(secret)}).status_code == 302
    assert not _signed_in(stale)


def test_a_recovery_code_works_once_ends_other_sessions_and_shows_in_sessions(
    app: Flask, owner: int, clock: Any
) -> None:
    enrolled = _log_in_plain(app)
    _secret, codes = _enrol(enrolled)
    lost_phone = app.test_client()
    _password_step(lost_phone)
    used = lost_phone.post("/login/code", data={"code": codes[3].upper().replace("-", " ")})
    assert used.status_code == 302
    assert _signed_in(lost_phone)
    assert not _signed_in(enrolled)  # every other session ended
    page = lost_phone.get("/me/sessions").get_data(as_text=True)
    assert "logged in with a recovery code" in page
    status = lost_phone.get("/me/two-factor").get_data(as_text=True)
    assert re.search(r"<strong>9</strong> unused recovery codes", status)
    assert "Used: " in status

    again = app.test_client()
    _password_step(again)
    assert again.post("/login/code", data={"code": codes[3]}).status_code == 422
    assert not _signed_in(again)
    assert again.post("/login/code", data={"code": codes[4]}).status_code == 302


def test_new_recovery_codes_replace_the_old_ones(app: Flask, owner: int, clock: Any) -> None:
    client = _log_in_plain(app)
    _secret, old = _enrol(client)
    refused = client.post("/me/two-factor/recovery-codes", data={"codes-password": "nope"})
    assert refused.status_code == 422
    assert "That is not your password." in refused.get_data(as_text=True)
    fresh = client.post("/me/two-factor/recovery-codes", data={"codes-password": PASSWORD})
    new = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", fresh.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    other = app.test_client()
    _password_step(other)
    assert other.post("/login/code", data={"code": old[0]}).status_code == 422
    assert other.post("/login/code", data={"code": new[0]}).status_code == 302


def test_enabling_two_factor_ends_the_other_sessions(app: Flask, owner: int, clock: Any) -> None:
    elsewhere = _log_in_plain(app)
    here = _log_in_plain(app)
    _enrol(here)
    assert _signed_in(here)
    assert not _signed_in(elsewhere)  # it had only the password


def test_turning_it_off_needs_the_password(app: Flask, owner: int, clock: Any) -> None:
    client = _log_in_plain(app)
    _enrol(client)
    wrong = client.post("/me/two-factor/disable", data={"password": "not my password"})
    assert wrong.status_code == 422
    assert "That is not your password." in wrong.get_data(as_text=True)
    assert "/login/code" in _password_step(app.test_client()).headers["Location"]
    off = client.post("/me/two-factor/disable", data={"password": PASSWORD})
    assert off.status_code == 302
    assert "is off" in client.get("/me/two-factor").get_data(as_text=True)
    _log_in_plain(app)  # one step again
    with app.app_context():
        assert core_db.session.scalar(select(TotpCredential)) is None
        assert core_db.session.scalar(select(RecoveryCode)) is None


def test_an_account_can_require_two_factor_of_every_member(
    app: Flask, owner: int, clock: Any
) -> None:
    with app.app_context():
        for email, role in (("member@ejemplo.es", "member"), ("admin@ejemplo.es", "admin")):
            services.add_member(owner, "owner", email, "", role)
            user = core_db.session.scalar(select(User).where(User.email == email))
            assert user is not None
            user.password_hash = services._hasher.hash(PASSWORD)
        core_db.session.commit()
    boss = _log_in_plain(app)
    first = boss.post("/settings/security", data={"require_two_factor": "y"})
    assert first.status_code == 422
    assert "Turn on two-factor authentication for yourself first" in first.get_data(as_text=True)
    _enrol(boss)
    admin = _log_in_plain(app, "admin@ejemplo.es")
    assert admin.post("/settings/security", data={"require_two_factor": "y"}).status_code == 302
    assert "Only an owner can change this." in admin.get("/settings/security").get_data(
        as_text=True
    )
    member = _log_in_plain(app, "member@ejemplo.es")  # logged in before the change
    saved = boss.post("/settings/security", data={"require_two_factor": "y"})
    assert saved.status_code == 302
    listed = boss.get("/settings/security").get_data(as_text=True)
    assert "member@ejemplo.es" in listed and "admin@ejemplo.es" in listed

    # Already logged in or logging in now: only the enrolment is open until it is done.
    fresh = _log_in_plain(app, "admin@ejemplo.es")
    for client in (member, fresh):
        for path in ("/dashboard", "/lists", "/me/sessions", "/me/two-factor", "/campaigns"):
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["Location"].endswith("/me/two-factor/setup"), path
        refused = client.post("/lists", data={"name": "Sneaky"})
        assert refused.status_code == 303
        assert refused.headers["Location"].endswith("/me/two-factor/setup")
        page = client.get("/me/two-factor/setup").get_data(as_text=True)
        assert "requires two-factor authentication for every member" in page
    clock.shift(30)
    _enrol(member)
    assert _signed_in(member)
    assert member.get("/lists").status_code == 200
    with app.app_context():
        from subscribers.models import MailingList

        assert core_db.session.scalar(select(MailingList)) is None  # the refused POST did nothing

    # Turning the requirement off frees the admin who has not enrolled.
    off = boss.post("/settings/security", data={})
    assert off.status_code == 302, off.get_data(as_text=True)
    assert _signed_in(fresh), fresh.get("/dashboard").headers


def test_the_right_password_does_not_reset_the_count_of_wrong_codes(
    app: Flask, owner: int, clock: Any
) -> None:
    """Someone who knows the password cannot guess codes forever by logging in again
    between rounds: the failures are forgotten only when the second factor is right."""
    secret, _codes = _enrol(_log_in_plain(app))
    guesser = app.test_client()
    answers = []
    for _round in range(3):
        _password_step(guesser)
        answers += [guesser.post("/login/code", data={"code": "333333"}).status_code]
        answers += [guesser.post("/login/code", data={"code": "444444"}).status_code]
        answers += [guesser.post("/login/code", data={"code": "555555"}).status_code]
    assert answers[:5] == [422] * 5
    assert 429 in answers[5:]
    assert _password_step(app.test_client()).status_code == 429
    clock.shift(601)
    owner_again = app.test_client()
    _password_step(owner_again)
    assert owner_again.post("/login/code", data={"code": _code(secret)}).status_code == 302


def test_a_forged_passkey_answer_is_refused_and_counted(app: Flask, owner: int, clock: Any) -> None:
    """The passkey path (its happy path runs in Chromium, tests/browser/test_two_factor_flow.py)
    refuses what does not verify, counts it as a wrong code, and needs the half-done login."""
    client = _log_in_plain(app)
    no_app_yet = client.post("/me/two-factor/passkeys/options", json={})
    assert no_app_yet.status_code == 409
    assert "authenticator app first" in no_app_yet.get_json()["error"]
    _enrol(client)
    options = client.post("/me/two-factor/passkeys/options", json={})
    assert options.status_code == 200 and options.get_json()["rp"]["id"] == "localhost"
    bogus = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
    refused = client.post("/me/two-factor/passkeys", json={"credential": bogus, "name": "x"})
    assert refused.status_code == 422
    assert "could not be added" in refused.get_json()["error"]

    stranger = app.test_client()
    assert stranger.post("/login/passkey/options", json={}).status_code == 409
    assert stranger.post("/login/passkey", json={"credential": bogus}).status_code == 409
    with app.app_context():
        from accounts.models import Passkey

        user_id = core_db.session.scalar(select(User.id).where(User.email == EMAIL))
        core_db.session.add(
            Passkey(user_id=user_id, credential_id="AAAA", public_key=b"\x00", name="Forged")
        )
        core_db.session.commit()
    _password_step(stranger)
    assert stranger.post("/login/passkey/options", json={}).status_code == 200
    answer = stranger.post("/login/passkey", json={"credential": bogus})
    assert answer.status_code == 422
    assert not _signed_in(stranger)
    # The challenge was spent: the same answer again has nothing to match.
    assert stranger.post("/login/passkey", json={"credential": bogus}).status_code == 422
    with app.app_context():
        challenge = core_db.session.scalar(select(LoginChallenge))
        assert challenge is not None and challenge.failures == 2


def test_second_factor_changes_are_in_the_owners_security_log(app: Flask, owner: int) -> None:
    """Turning two-factor on, a wrong code, a login with a recovery code, and turning it off
    are recorded in the account's security log, which the owner reads."""
    from accounts.models import SecurityEvent

    client = _log_in_plain(app)
    _key, codes = _enrol(client)
    other = app.test_client()
    _password_step(other)
    other.post("/login/code", data={"code": "000000"})
    other.post("/login/code", data={"code": codes[0]})
    assert _signed_in(other)
    with app.app_context():
        user_id = core_db.session.scalar(select(User.id).where(User.email == EMAIL))
        assert user_id is not None
        from accounts import twofactor

        twofactor.disable(user_id, PASSWORD)
        kinds = list(
            core_db.session.scalars(
                select(SecurityEvent.kind)
                .where(SecurityEvent.account_id == owner)
                .order_by(SecurityEvent.id)
            )
        )
    assert kinds[-5:] == [
        "two-factor-enabled",
        "second-factor-failed",
        "recovery-code-used",
        "login",
        "two-factor-disabled",
    ], kinds
    page = other.get("/settings/security-log").get_data(as_text=True)
    assert "Recovery code used" in page and "with recovery-code" in page
