"""Login throttling (issue 15): progressive waits and a lockout per address, a limit per client
network, an email to the owner on lockout, and the same answers for unknown and known
addresses. Through HTTP, with frozen time; one run on the real Redis."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from accounts import services
from tests.conftest import drain
from tests.factories import PASSWORD, make_tenant
from tests.privacy.helpers import link_in
from tests.smtp_sink import SMTPSink

START = datetime(2026, 3, 2, 9, 0, 0)
KNOWN = "zoe.nunez@ejemplo.es"
UNKNOWN = "nadie@ejemplo.es"
NEW_PASSWORD = "Ольга's brand new passphrase"
WRONG = "wrong password!"


def _at(seconds: float) -> Any:
    return time_machine.travel(START + timedelta(seconds=seconds), tick=False)


def _client(app: Flask, remote_addr: str = "198.51.100.23") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    return client


def _try(client: FlaskClient, email: str, password: str = WRONG) -> Any:
    return client.post("/login", data={"email": email, "password": password})


def _answer(response: Any, email: str) -> tuple[int, str | None, str]:
    """What an observer sees of an answer, with the typed address taken out."""
    body = response.get_data(as_text=True).replace(email, "ADDRESS")
    return response.status_code, response.headers.get("Retry-After"), body


@pytest.fixture
def known(app: Flask) -> None:
    with app.app_context():
        make_tenant(KNOWN, "Zoë Ñúñez SL")


def test_fifty_wrong_passwords_then_the_right_one_does_not_log_in(app: Flask, known: None) -> None:
    client = _client(app)
    with _at(0):
        answers = [_try(client, KNOWN).status_code for _ in range(50)]
        assert answers[:5] == [422] * 5 and set(answers[5:]) == {429}
        right = _try(client, KNOWN, PASSWORD)
        assert right.status_code == 429
        assert "Too many failed attempts. Try again in 1 minute." in right.get_data(as_text=True)
        assert int(right.headers["Retry-After"]) == 60
        assert client.get("/dashboard").status_code == 302
    with _at(61):  # refused attempts were not checked, so they do not count
        assert _try(client, KNOWN, PASSWORD).status_code == 302
        assert client.get("/dashboard").status_code == 200


def test_waits_grow_then_the_address_is_locked_and_its_owner_emailed(
    app: Flask, known: None, smtp_sink: SMTPSink
) -> None:
    client = _client(app)
    with _at(0):
        for _ in range(5):
            assert _try(client, KNOWN).status_code == 422
        assert int(_try(client, KNOWN).headers["Retry-After"]) == 60
    with _at(61):
        for _ in range(3):
            assert _try(client, KNOWN).status_code == 422
        waiting = _try(client, KNOWN, PASSWORD)
        assert waiting.status_code == 429
        assert int(waiting.headers["Retry-After"]) == 600 - 61  # 8 failures in 10 minutes
    with _at(601):
        assert _try(client, KNOWN).status_code == 422  # the 9th failure
        assert _try(client, KNOWN).status_code == 422  # the 10th within 15 minutes: locked
        locked = _try(client, KNOWN, PASSWORD)
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) == 900
        page = locked.get_data(as_text=True)
        assert "Try again in 15 minutes" in page and "we emailed you a link" in page
        drain(app)
    notices = [m for m in smtp_sink.to(KNOWN) if "locked" in str(m.message["Subject"])]
    assert len(notices) == 1  # once, not for every refused attempt
    text = notices[0].message.get_body(preferencelist=("plain",)).get_content()
    assert "blocked for 15 minutes" in text and KNOWN not in text
    with _at(1400):
        assert _try(client, KNOWN, PASSWORD).status_code == 429  # still locked
        # Choosing a new password through the emailed link lifts the lock.
        path = link_in(smtp_sink, KNOWN, "/password/reset/")
        reset = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert reset.status_code == 302
        assert _try(client, KNOWN, NEW_PASSWORD).status_code == 302


def test_a_lockout_ends_by_itself(app: Flask, known: None, smtp_sink: SMTPSink) -> None:
    config = {"LOGIN_LIMITS_PER_ADDRESS": "100/minute", "LOGIN_LOCKOUT_AFTER": 3}
    app.config.update(config)
    client = _client(app)
    with _at(0):
        for _ in range(3):
            assert _try(client, KNOWN).status_code == 422
        assert _try(client, KNOWN, PASSWORD).status_code == 429
    with _at(899):
        assert _try(client, KNOWN, PASSWORD).status_code == 429
    with _at(901):
        assert _try(client, KNOWN, PASSWORD).status_code == 302


def test_unknown_and_known_addresses_get_the_same_answers(
    app: Flask, known: None, smtp_sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real = services._hasher

    class Spy:
        def verify(self, hash_: str, password: str) -> bool:
            verified.append(hash_)
            return real.verify(hash_, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(services, "_hasher", Spy())
    seen: dict[str, list[tuple[int, str | None, str]]] = {}
    for email, network in ((KNOWN, "198.51.100.23"), (UNKNOWN, "192.0.2.44")):
        client = _client(app, network)
        with _at(0):
            answers = [_answer(_try(client, email), email) for _ in range(6)]
        with _at(61):
            answers += [_answer(_try(client, email), email) for _ in range(4)]
        with _at(601):
            answers += [_answer(_try(client, email), email) for _ in range(3)]
        seen[email] = answers
    assert seen[KNOWN] == seen[UNKNOWN]
    assert [code for code, _, _ in seen[KNOWN]].count(429) >= 3
    # Both did the same password work: one argon2 verification per checked attempt.
    assert len(verified) == 2 * 10
    drain(app)
    assert smtp_sink.to(UNKNOWN) == []


def test_one_network_is_limited_across_addresses(app: Flask) -> None:
    app.config.update(LOGIN_LIMITS_PER_NETWORK="10/minute")
    with app.app_context():
        make_tenant("李小龍@例子.cn", "李小龍 Trading")
    attacker = _client(app, "203.0.113.7")
    neighbour = _client(app, "203.0.113.200")  # same /24
    elsewhere = _client(app, "2001:db8:aaaa:1::1")
    with _at(0):
        for n in range(10):
            assert _try(attacker, f"guess{n}@ejemplo.es").status_code == 422
        assert _try(attacker, "guess99@ejemplo.es").status_code == 429
        assert _try(neighbour, "李小龍@例子.cn", PASSWORD).status_code == 429
        assert _try(elsewhere, "李小龍@例子.cn", PASSWORD).status_code == 302
    with _at(61):
        assert _try(neighbour, "李小龍@例子.cn", PASSWORD).status_code == 302


def test_hostile_addresses_are_answered_like_any_other(app: Flask) -> None:
    client = _client(app)
    with _at(0):
        for email in ("' OR 1=1 --", "a" * 5000 + "@x.example", "<script>@x.example", "\u202e@x"):
            response = _try(client, email)
            assert response.status_code == 422
            assert "Wrong email or password." in response.get_data(as_text=True)


@pytest.mark.redis
def test_failures_are_shared_through_redis(app_factory: Any, smtp_sink: SMTPSink) -> None:
    """Two web processes (two apps) on Redis see the same failures."""
    first = app_factory(broker="redis")
    second = app_factory(broker="redis")
    with first.app_context():
        make_tenant(KNOWN, "Zoë Ñúñez SL")
    for _ in range(5):
        assert _try(_client(first), KNOWN).status_code == 422
    refused = _try(_client(second), KNOWN, PASSWORD)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
