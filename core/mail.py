"""Mail transports: SMTP (one reused connection for many messages) and a Maildir outbox.

``SMTP_URL`` forms: ``smtp://user:pass@host:587`` (STARTTLS when the server offers it, or
forced with ``?starttls=1``), ``smtps://user:pass@host:465`` (implicit TLS),
``smtp://host:25?starttls=0`` (plain, for a local relay). With no ``SMTP_URL`` messages are
written to the Maildir at ``MAILDIR_PATH``.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app


class TransientMailError(Exception):
    """The server deferred the message (4xx) or the connection failed: try again later."""


class PermanentMailError(Exception):
    """The server refused the message for good (5xx)."""


class Connection(Protocol):
    """An open transport: send many messages, then close."""

    def send(self, message: bytes, envelope_from: str, recipients: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool | None  # None: use it when offered
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SMTPSettings:
        """Parse ``SMTP_URL``; raise ValueError on an unknown scheme."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"SMTP_URL scheme must be smtp or smtps, not {parts.scheme!r}")
        query = parse_qs(parts.query)
        starttls_raw = query.get("starttls", [None])[0]
        starttls = None if starttls_raw is None else starttls_raw in {"1", "true", "yes"}
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=starttls,
            timeout=float(query.get("timeout", ["30"])[0]),
        )


class SMTPConnection:
    """One SMTP session reused for every message sent through it."""

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings
        context = ssl.create_default_context()
        try:
            if settings.implicit_tls:
                self.smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout, context=context
                )
            else:
                self.smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
                self.smtp.ehlo()
                wants_tls = settings.starttls
                if wants_tls is None:
                    wants_tls = self.smtp.has_extn("starttls")
                if wants_tls:
                    self.smtp.starttls(context=context)
                    self.smtp.ehlo()
            if settings.username:
                self.smtp.login(settings.username, settings.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientMailError(
                f"cannot connect to {settings.host}:{settings.port}: {exc}"
            ) from exc

    def send(self, message: bytes, envelope_from: str, recipients: Sequence[str]) -> None:
        try:
            refused = self.smtp.sendmail(envelope_from, list(recipients), message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise PermanentMailError(str(exc.recipients)) from exc
            raise TransientMailError(str(exc.recipients)) from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise TransientMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientMailError(str(exc)) from exc
        if refused:
            raise PermanentMailError(str(refused))

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            self.smtp.close()


class MaildirConnection:
    """Writes each message into a Maildir's ``new/`` folder (the embedded outbox)."""

    def __init__(self, path: str) -> None:
        root = Path(path)
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(path, create=False)

    def send(self, message: bytes, envelope_from: str, recipients: Sequence[str]) -> None:
        envelope = f"X-Envelope-From: {envelope_from}\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        self.box.add(envelope.encode() + message)

    def close(self) -> None:
        self.box.close()


@contextmanager
def open_connection(smtp_url: str | None = None) -> Iterator[Connection]:
    """Open the configured transport for a batch of messages and close it afterwards."""
    url = smtp_url if smtp_url is not None else current_app.config.get("SMTP_URL", "")
    conn: SMTPConnection | MaildirConnection
    if url:
        conn = SMTPConnection(SMTPSettings.from_url(url))
    else:
        conn = MaildirConnection(current_app.config["MAILDIR_PATH"])
    try:
        yield conn
    finally:
        conn.close()


def sender_domain(address: str) -> str:
    """The domain part of an address, for Message-IDs and DKIM."""
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def build_message(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    sender: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A well-formed message: Date, Message-ID, text part and optional HTML alternative.

    ``EmailMessage`` refuses CR or LF inside header values, so header injection raises.
    """
    msg = EmailMessage()
    sender = sender or current_app.config["MAIL_FROM"]
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender_domain(sender))
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def to_wire(message: EmailMessage) -> bytes:
    """The message as sent over SMTP: CRLF line endings, headers folded for the wire."""
    return message.as_bytes(policy=email_policy.SMTP)


def send_system_mail(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one transactional message (password reset, confirmation) right away."""
    msg = build_message(to=to, subject=subject, text=text, html=html)
    envelope_from = parseaddr(current_app.config["MAIL_FROM"])[1]
    with open_connection() as conn:
        conn.send(to_wire(msg), envelope_from, [to])
