"""DSN and ARF reports read from a real IMAP server on loopback (tests/imap_server.py):
recorded reports are deleted, everything else is kept and marked seen."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from campaigns import bounces
from campaigns.models import Bounce
from core import db
from subscribers.suppression import suppression_reason
from tests.campaigns.helpers import (
    RETURN_PATH,
    campaign_account_id,
    message_to,
    sample_report,
    sent_campaign,
)
from tests.imap_server import IMAPServer
from tests.smtp_sink import SMTPSink

ORDINARY = b"From: someone@example.org\r\nSubject: Thanks!\r\n\r\nNot a report.\r\n"


@pytest.fixture
def imap_server() -> Iterator[IMAPServer]:
    """An IMAP server on 127.0.0.1 (ephemeral port) for user ``user``, password ``pass``."""
    server = IMAPServer("user", "pass").start()
    try:
        yield server
    finally:
        server.stop()


def _report(sent: dict[str, tuple[str, str]], name: str, address: str) -> bytes:
    message_id, verp = sent[address]
    return sample_report(name, address, message_id, verp)


def _bounce_count() -> int:
    return int(db.session.scalar(select(func.count(Bounce.id))) or 0)


def test_reports_in_an_imap_mailbox_are_recorded_and_deleted(
    sending_app: Flask, imap_server: IMAPServer
) -> None:
    sent = sent_campaign(sending_app, ["gone@example.org", "angry@hotmail.com", "full@example.net"])
    hard = _report(sent, "dsn_hard_postfix.eml", "gone@example.org")
    complaint = _report(sent, "arf_complaint.eml", "angry@hotmail.com")
    soft = _report(sent, "dsn_soft_exim.eml", "full@example.net")
    # A well-formed report about a message that is not ours: nothing to record, kept.
    stranger = sample_report(
        "dsn_hard_postfix.eml",
        "stranger@example.org",
        "<unknown@elsewhere.example>",
        "bounces+forged@shop.example",
    )
    for raw in (ORDINARY, hard, stranger, complaint, soft):
        imap_server.deliver(raw)
    url = f"imap://user:pass@127.0.0.1:{imap_server.port}/INBOX"

    assert bounces.process_imap(url) == 3

    account_id = campaign_account_id()
    assert suppression_reason(account_id, "gone@example.org") == "hard_bounce"
    assert suppression_reason(account_id, "angry@hotmail.com") == "complaint"
    assert suppression_reason(account_id, "full@example.net") is None  # one soft bounce of two
    stored = {
        (b.message_id, b.kind, b.source, b.diagnostic) for b in db.session.scalars(select(Bounce))
    }
    assert stored == {
        (message_to("gone@example.org").id, "hard", "dsn", "550 5.1.1"),
        (message_to("angry@hotmail.com").id, "complaint", "arf", "arf abuse"),
        (message_to("full@example.net").id, "soft", "dsn", "452 4.2.2"),
    }
    # The recorded reports are expunged; the rest stays, in order, marked seen and not deleted.
    assert sorted(m.raw for m in imap_server.expunged) == sorted([hard, complaint, soft])
    left = imap_server.messages()
    assert [m.raw for m in left] == [ORDINARY, stranger]
    assert [m.flags for m in left] == [{"\\Seen"}, {"\\Seen"}]
    assert imap_server.commands[-1] == "LOGOUT"

    # A second run finds nothing unseen: nothing is fetched, recorded or deleted.
    before = len(imap_server.commands)
    assert bounces.process_imap(url) == 0
    assert "FETCH" not in imap_server.commands[before:]
    assert [m.raw for m in imap_server.messages()] == [ORDINARY, stranger]
    assert len(imap_server.expunged) == 3
    assert _bounce_count() == 3


@pytest.mark.parametrize(("username", "password"), [("user", "wrong"), ("someone", "pass")])
def test_wrong_credentials_raise_and_touch_nothing(
    sending_app: Flask, imap_server: IMAPServer, username: str, password: str
) -> None:
    sent = sent_campaign(sending_app, ["gone@example.org"])
    hard = _report(sent, "dsn_hard_postfix.eml", "gone@example.org")
    imap_server.deliver(hard)
    imap_server.deliver(ORDINARY)

    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        bounces.process_imap(imap_server.url(username=username, password=password))

    assert imap_server.logins == [(username, password)]
    assert imap_server.commands == ["CAPABILITY", "LOGIN", "LOGOUT"]  # no SELECT, no FETCH
    assert [(m.raw, m.flags) for m in imap_server.messages()] == [(hard, set()), (ORDINARY, set())]
    assert imap_server.expunged == []
    assert _bounce_count() == 0
    assert message_to("gone@example.org").bounce_kind is None
    assert suppression_reason(campaign_account_id(), "gone@example.org") is None


def test_percent_encoded_user_name_and_password_are_decoded_before_login(
    sending_app: Flask, imap_server: IMAPServer
) -> None:
    imap_server.username = "bounce@shop.example"
    imap_server.password = 'p/ss"w@rd%:x'
    sent = sent_campaign(sending_app, ["gone@example.org"])
    imap_server.deliver(_report(sent, "dsn_hard_postfix.eml", "gone@example.org"))
    url = f"imap://bounce%40shop.example:p%2Fss%22w%40rd%25%3Ax@127.0.0.1:{imap_server.port}/INBOX"

    assert bounces.process_imap(url) == 1

    assert imap_server.logins == [("bounce@shop.example", 'p/ss"w@rd%:x')]
    assert imap_server.messages() == []
    assert message_to("gone@example.org").bounce_kind == "hard"


def test_percent_encoded_mailbox_name_is_decoded(
    sending_app: Flask, imap_server: IMAPServer
) -> None:
    imap_server.create("Bounce Reports")
    sent = sent_campaign(sending_app, ["gone@example.org"])
    imap_server.deliver(_report(sent, "dsn_hard_postfix.eml", "gone@example.org"), "Bounce Reports")
    imap_server.deliver(ORDINARY)  # INBOX is not the configured mailbox: left alone
    url = f"imap://user:pass@127.0.0.1:{imap_server.port}/Bounce%20Reports"

    assert bounces.process_imap(url) == 1

    assert imap_server.messages("Bounce Reports") == []
    assert [(m.raw, m.flags) for m in imap_server.messages()] == [(ORDINARY, set())]
    assert message_to("gone@example.org").bounce_kind == "hard"


def test_missing_mailbox_is_a_clear_error(sending_app: Flask, imap_server: IMAPServer) -> None:
    sent = sent_campaign(sending_app, ["gone@example.org"])
    hard = _report(sent, "dsn_hard_postfix.eml", "gone@example.org")
    imap_server.deliver(hard)

    with pytest.raises(imaplib.IMAP4.error, match=r"'Bounces'.*NONEXISTENT"):
        bounces.process_imap(imap_server.url(mailbox="Bounces"))

    assert [(m.raw, m.flags) for m in imap_server.messages()] == [(hard, set())]
    assert imap_server.commands[-1] == "LOGOUT"
    assert _bounce_count() == 0


def test_configured_imap_mailbox_is_read(
    app_factory: Any, smtp_sink: SMTPSink, imap_server: IMAPServer
) -> None:
    app: Flask = app_factory(
        RETURN_PATH=RETURN_PATH, BOUNCE_MAILDIR="", BOUNCE_IMAP_URL=imap_server.url()
    )
    app.extensions["test_sink"] = smtp_sink
    with app.app_context():
        sent = sent_campaign(app, ["angry@hotmail.com", "gone@example.org"])
        imap_server.deliver(_report(sent, "arf_complaint.eml", "angry@hotmail.com"))
        imap_server.deliver(_report(sent, "dsn_hard_postfix.eml", "gone@example.org"))

        assert bounces.process_configured_mailboxes() == 2

        assert suppression_reason(campaign_account_id(), "angry@hotmail.com") == "complaint"
        assert suppression_reason(campaign_account_id(), "gone@example.org") == "hard_bounce"
        assert imap_server.messages() == []
        assert imap_server.logins == [("user", "pass")]


def test_a_report_that_fails_to_record_stays_unseen_for_the_next_run(
    sending_app: Flask, imap_server: IMAPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sent_campaign(sending_app, ["gone@example.org"])
    hard = _report(sent, "dsn_hard_postfix.eml", "gone@example.org")
    imap_server.deliver(hard)
    url = f"imap://user:pass@127.0.0.1:{imap_server.port}/INBOX"

    def database_down(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("database unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(bounces, "record_bounce", database_down)
        with pytest.raises(ConnectionError):
            bounces.process_imap(url)
    assert [m.flags for m in imap_server.messages()] == [set()]  # still unseen, not deleted

    assert bounces.process_imap(url) == 1  # the database is back: the next run records it
    assert suppression_reason(campaign_account_id(), "gone@example.org") == "hard_bounce"
    assert [m.raw for m in imap_server.expunged] == [hard]
