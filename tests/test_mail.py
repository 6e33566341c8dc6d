"""Mail transports: the Maildir outbox, SMTP URL parsing, SMTP outcomes, header injection."""

from __future__ import annotations

import mailbox
from typing import Any

import pytest
from flask import Flask

from core.mail import (
    PermanentMailError,
    SMTPSettings,
    TransientMailError,
    build_message,
    open_connection,
    send_system_mail,
    to_wire,
)
from tests.smtp_sink import SMTPSink


def test_maildir_outbox_is_the_embedded_default(app_factory: Any, tmp_path: Any) -> None:
    outbox = tmp_path / "fresh" / "outbox"
    app: Flask = app_factory(SMTP_URL="", MAILDIR_PATH=str(outbox))
    with app.app_context():
        send_system_mail("someone@example.org", "Hi", "Hello there")
        send_system_mail("other@example.org", "Hi again", "Hello again")
    box = mailbox.Maildir(str(outbox), create=False)
    subjects = sorted(message["Subject"] for message in box)
    assert subjects == ["Hi", "Hi again"]


def test_smtp_url_forms() -> None:
    plain = SMTPSettings.from_url("smtp://relay.local:2525?starttls=0")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls) == (
        "relay.local",
        2525,
        False,
        False,
    )
    tls = SMTPSettings.from_url("smtps://user%40x:p%3Ass@mail.example")
    assert (tls.port, tls.implicit_tls, tls.username, tls.password) == (465, True, "user@x", "p:ss")
    assert SMTPSettings.from_url("smtp://mail.example?starttls=1").starttls is True
    with pytest.raises(ValueError):
        SMTPSettings.from_url("http://mail.example")


def test_one_connection_sends_many_and_maps_outcomes(app: Flask, smtp_sink: SMTPSink) -> None:
    smtp_sink.reply_for("later@example.org", "451 try again later")
    smtp_sink.reply_for("gone@example.org", "550 no such user")
    with app.app_context(), open_connection() as conn:
        for n in range(5):
            msg = build_message(to=f"r{n}@example.org", subject=f"n{n}", text="x")
            conn.send(to_wire(msg), "bounce@example.com", [f"r{n}@example.org"])
        with pytest.raises(TransientMailError):
            conn.send(
                to_wire(build_message(to="later@example.org", subject="s", text="x")),
                "b@x.example",
                ["later@example.org"],
            )
        with pytest.raises(PermanentMailError):
            conn.send(
                to_wire(build_message(to="gone@example.org", subject="s", text="x")),
                "b@x.example",
                ["gone@example.org"],
            )
    assert len(smtp_sink.messages) == 5


def test_connection_refused_is_transient(app: Flask) -> None:
    with (
        app.app_context(),
        pytest.raises(TransientMailError),
        open_connection("smtp://127.0.0.1:1?starttls=0&timeout=2"),
    ):
        pass


def test_header_injection_is_refused(app: Flask) -> None:
    with app.app_context(), pytest.raises(ValueError):
        build_message(to="a@example.org", subject="Hi\r\nBcc: victim@example.org", text="x")
