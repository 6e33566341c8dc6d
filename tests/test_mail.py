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
    TransportError,
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


#: How a session sends, by what the server offers: (PIPELINING, CHUNKING, the command used).
MODES = pytest.mark.parametrize(
    "pipelining,chunking,via",
    [(True, True, "BDAT"), (True, False, "DATA"), (False, False, "DATA"), (False, True, "DATA")],
    ids=["chunked", "pipelined", "one-by-one", "chunking-without-pipelining"],
)


@MODES
def test_one_connection_sends_many_and_maps_outcomes(
    app: Flask, smtp_sink: SMTPSink, pipelining: bool, chunking: bool, via: str
) -> None:
    smtp_sink.pipelining = pipelining
    smtp_sink.chunking = chunking
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
    assert [m.via for m in smtp_sink.messages] == [via] * 5
    assert [m.message["Subject"] for m in smtp_sink.messages] == [f"n{n}" for n in range(5)]


def _wire(to: str, text: str = "x") -> bytes:
    return to_wire(build_message(to=to, subject="s", text=text))


@MODES
def test_refusals_at_each_step_map_to_outcomes_and_keep_the_session_usable(
    app: Flask, smtp_sink: SMTPSink, pipelining: bool, chunking: bool, via: str
) -> None:
    smtp_sink.pipelining = pipelining
    smtp_sink.chunking = chunking
    smtp_sink.reply_for("bounces@shop.example", "550 5.7.1 sender rejected", stage="mail")
    smtp_sink.reply_for("busy@shop.example", "451 4.3.0 try later", stage="mail")
    smtp_sink.reply_for("gone@example.org", "550 5.1.1 no such user", stage="rcpt")
    smtp_sink.reply_for("full@example.org", "452 4.2.2 mailbox full", stage="rcpt")
    smtp_sink.reply_for("spam@example.org", "554 5.7.1 looks like spam")
    smtp_sink.reply_for("slow@example.org", "451 4.7.1 greylisted")
    with app.app_context(), open_connection() as conn:
        assert getattr(conn, "pipelining", False) is pipelining
        assert getattr(conn, "chunking", False) is (via == "BDAT")
        with pytest.raises(PermanentMailError, match=r"550 .*5\.7\.1") as refused_sender:
            conn.send(_wire("a@example.org"), "bounces@shop.example", ["a@example.org"])
        assert refused_sender.value.code == 550
        with pytest.raises(TransientMailError) as busy:
            conn.send(_wire("a@example.org"), "busy@shop.example", ["a@example.org"])
        assert busy.value.code == 451 and not isinstance(busy.value, TransportError)
        with pytest.raises(PermanentMailError) as gone:
            conn.send(_wire("gone@example.org"), "b@shop.example", ["gone@example.org"])
        assert gone.value.code == 550
        with pytest.raises(TransientMailError) as full:
            conn.send(_wire("full@example.org"), "b@shop.example", ["full@example.org"])
        assert full.value.code == 452
        # Refusals of the message itself (at the end of DATA or BDAT LAST).
        with pytest.raises(PermanentMailError, match=r"554 .*5\.7\.1") as spam:
            conn.send(_wire("spam@example.org"), "b@shop.example", ["spam@example.org"])
        assert spam.value.code == 554
        with pytest.raises(TransientMailError) as slow:
            conn.send(_wire("slow@example.org"), "b@shop.example", ["slow@example.org"])
        assert slow.value.code == 451
        # After every refusal the same session delivers the next message.
        conn.send(_wire("ok@example.org"), "b@shop.example", ["ok@example.org"])
    assert [(m.recipients, m.via) for m in smtp_sink.messages] == [(["ok@example.org"], via)]


def test_a_closing_server_is_a_transport_error(app: Flask, smtp_sink: SMTPSink) -> None:
    smtp_sink.reply_for("a@example.org", "421 4.3.2 shutting down", stage="rcpt")
    with app.app_context(), open_connection() as conn:
        with pytest.raises(TransportError) as closing:
            conn.send(_wire("a@example.org"), "b@shop.example", ["a@example.org"])
        assert closing.value.code == 421
        assert getattr(conn, "broken", False) is True


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_lines_starting_with_a_dot_arrive_intact(
    app: Flask, smtp_sink: SMTPSink, chunking: bool
) -> None:
    smtp_sink.chunking = chunking
    body = ".starts with a dot\r\n..two dots\r\nmiddle . dot\r\n.\r\nend"
    raw = b"Subject: dots\r\nFrom: b@shop.example\r\n\r\n" + body.encode()
    with app.app_context(), open_connection() as conn:
        conn.send(raw, "b@shop.example", ["dots@example.org"])
    arrived = smtp_sink.wait_for(1)[0]
    assert arrived.via == ("BDAT" if chunking else "DATA")
    received = arrived.data.replace(b"\r\n", b"\n")
    assert received.rstrip(b"\n").endswith(body.replace("\r\n", "\n").encode())


def test_non_ascii_address_goes_with_smtputf8_and_is_refused_without_it(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context(), open_connection() as conn:
        conn.send(_wire("zoe@example.org"), "b@shop.example", ["zoë@example.org"])
    assert smtp_sink.wait_for(1)[0].recipients == ["zoë@example.org"]
    smtp_sink.smtputf8 = False
    with app.app_context(), open_connection() as conn:
        with pytest.raises(PermanentMailError, match="SMTPUTF8"):
            conn.send(_wire("zoe@example.org"), "b@shop.example", ["zoë@example.org"])
        conn.send(_wire("zoe@example.org"), "b@shop.example", ["zoe@example.org"])
    assert [m.recipients for m in smtp_sink.wait_for(2)][1] == ["zoe@example.org"]


def test_pipelining_can_be_turned_off_in_the_url(app: Flask, smtp_sink: SMTPSink) -> None:
    with app.app_context(), open_connection(smtp_sink.url + "&pipelining=0") as conn:
        assert getattr(conn, "pipelining", True) is False
        conn.send(_wire("a@example.org"), "b@shop.example", ["a@example.org"])
    assert len(smtp_sink.wait_for(1)) == 1


def test_chunking_can_be_turned_off_in_the_url(app: Flask, smtp_sink: SMTPSink) -> None:
    with app.app_context(), open_connection(smtp_sink.url + "&chunking=0") as conn:
        assert getattr(conn, "chunking", True) is False
        assert getattr(conn, "pipelining", False) is True
        conn.send(_wire("a@example.org"), "b@shop.example", ["a@example.org"])
    assert [m.via for m in smtp_sink.wait_for(1)] == ["DATA"]


def test_a_transaction_needs_a_recipient(app: Flask, smtp_sink: SMTPSink) -> None:
    with app.app_context(), open_connection() as conn, pytest.raises(ValueError):
        conn.send(_wire("a@example.org"), "b@shop.example", [])


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
