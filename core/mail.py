"""Mail transports: pooled SMTP connections and a Maildir outbox; DKIM signing.

``SMTP_URL`` forms: ``smtp://user:pass@host:587`` (STARTTLS when the server offers it, or
forced with ``?starttls=1``), ``smtps://user:pass@host:465`` (implicit TLS),
``smtp://host:25?starttls=0`` (plain, for a local relay); ``?pipelining=0`` and ``?chunking=0``
never use those extensions even when offered. With no ``SMTP_URL`` messages are
written to the Maildir at ``MAILDIR_PATH``.
"""

from __future__ import annotations

import mailbox
import re
import smtplib
import ssl
import threading
import time
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

from core.addresses import AddressError, wire_address
from core.logsafe import error_summary


class TransientMailError(Exception):
    """The server deferred the message (4xx) or the connection failed: try again later.

    ``stage`` says what the server answered to: ``sender`` (MAIL), ``recipient`` (RCPT),
    ``data`` or ``message`` (the message itself), ``closing``; empty when no reply is involved.
    """

    def __init__(self, message: str, code: int | None = None, stage: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage


class TransportError(TransientMailError):
    """The connection could not be opened or broke: the message was not accepted."""


class OutcomeUnknownError(TransportError):
    """The connection broke after the end of the message had been written (the final "." of
    DATA, or the last BDAT chunk) and before the server's reply: the server may have accepted
    and delivered it (RFC 1047). Resending could make a duplicate; the send path fails the
    message as interrupted instead (at most once)."""


class PermanentMailError(Exception):
    """The server refused the message for good (5xx); ``stage`` as for TransientMailError."""

    def __init__(self, message: str, code: int | None = None, stage: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage


class UnsupportedByServerError(PermanentMailError):
    """The message needs an extension this server does not offer (SMTPUTF8 for an
    international address): nothing was sent, and it is no bounce (the address is fine)."""


#: The reason an international address fails on a server without SMTPUTF8.
NO_SMTPUTF8 = "the server does not support international addresses (SMTPUTF8)"


_ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def smtp_status(error: Exception) -> str:
    """The SMTP reply code and enhanced status of an error, e.g. ``550 5.1.1``, never its text."""
    code = getattr(error, "code", None)
    enhanced = _ENHANCED_STATUS.search(str(error))
    parts = [str(code)] if code else []
    if enhanced:
        parts.append(enhanced.group(1))
    return " ".join(parts) or type(error).__name__


class Connection(Protocol):
    """An open transport: send many messages, then close."""

    def payload(self, message: bytes) -> bytes:
        """The bytes :meth:`send` writes for ``message`` (a rendering thread makes them ahead)."""
        ...

    def send(
        self,
        message: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        payload: bytes | None = None,
    ) -> None:
        """Send ``message``; ``payload`` is ``self.payload(message)`` when already made."""
        ...


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool | None  # None: use it when offered
    timeout: float = 30.0
    pipelining: bool = True  # when the server offers it (``?pipelining=0`` never)
    chunking: bool = True  # BDAT when the server offers CHUNKING and PIPELINING (``?chunking=0``)

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
            pipelining=query.get("pipelining", ["1"])[0] not in {"0", "false", "no"},
            chunking=query.get("chunking", ["1"])[0] not in {"0", "false", "no"},
        )


def mask_smtp_url(url: str) -> str:
    """``url`` with its password (if any) shown as bullets and its query left out:
    ``smtp://user:••••@host:587``. What the UI shows of a stored SMTP server."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = parts.username or ""
    if parts.password:
        user += ":••••"
    return f"{parts.scheme}://{user + '@' if user else ''}{host}{port}"


def _ascii_transaction(message: bytes, envelope_from: str, recipients: Sequence[str]) -> bool:
    """True when neither the envelope nor the message's headers hold UTF-8, so the transaction
    needs no SMTPUTF8 (RFC 6531 3.4). The body is not looked at: 8-bit text there is 8BITMIME's
    business, not SMTPUTF8's."""
    if not (envelope_from.isascii() and all(r.isascii() for r in recipients)):
        return False
    end = message.find(b"\r\n\r\n")
    return (message[:end] if end >= 0 else message).isascii()


def dot_stuffed(message: bytes) -> bytes:
    """The DATA payload of ``message``: a dot opening a line doubled (RFC 5321 4.5.2), CRLF at
    the end, then the closing dot. ``bytes.replace``, not smtplib's regex: a tenth of the cost."""
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\n.", b"\n..")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


class SMTPConnection:
    """One SMTP session reused for every message sent through it."""

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings
        self.broken = False
        #: Set once the current transaction's message has been written up to its end.
        self.message_ended = False
        self.pipelining = False
        self.chunking = False
        self.last_used = time.monotonic()
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
            if not self.smtp.does_esmtp:
                self.smtp.ehlo_or_helo_if_needed()
            self.pipelining = settings.pipelining and self.smtp.has_extn("pipelining")
            # BDAT (RFC 3030) pipelined with the envelope: one round trip per message, and the
            # message goes as it is, with no dot-stuffing for either side to do.
            self.chunking = self.pipelining and settings.chunking and self.smtp.has_extn("chunking")
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(
                f"cannot connect to {settings.host}:{settings.port}: {exc}"
            ) from exc

    def payload(self, message: bytes) -> bytes:
        """What :meth:`send` writes after the envelope: the message itself with BDAT, its
        dot-stuffed DATA payload otherwise."""
        return message if self.chunking else dot_stuffed(message)

    def send(
        self,
        message: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        payload: bytes | None = None,
    ) -> None:
        """One mail transaction: MAIL, RCPT for each recipient, then the message. With
        PIPELINING (RFC 2920) the envelope goes in one write; with CHUNKING as well, the
        message follows it in the same write as ``BDAT <size> LAST`` (RFC 3030), otherwise
        DATA waits for its 354. Raises PermanentMailError (5xx), TransientMailError (4xx) or
        TransportError (the session is broken: 421, I/O), OutcomeUnknownError (a TransportError)
        when it broke after the end of the message was written, before the server's reply
        (RFC 1047: it may have been accepted). ``payload``: ``self.payload(message)`` made
        ahead (by a rendering thread)."""
        if not recipients:
            raise ValueError("a mail transaction needs at least one recipient")
        self.message_ended = False
        try:
            self._transaction(message, envelope_from, list(recipients), payload)
        except (PermanentMailError, TransientMailError):
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self.broken = True
            # smtplib's texts may quote the envelope (SMTPSenderRefused, SMTPRecipientsRefused),
            # and this text is kept as the campaign's last error: its kind and code only.
            text = (
                str(exc) or type(exc).__name__ if isinstance(exc, OSError) else error_summary(exc)
            )
            if self.message_ended:
                # RFC 1047: the end of the message left, its reply did not come back.
                raise OutcomeUnknownError(
                    f"connection lost after the end of the message, before the reply: {text}"
                ) from exc
            raise TransportError(text) from exc

    def _refused(self, code: int, reply: bytes, what: str) -> Exception:
        """The error for a refusal (its code and enhanced status only: a server's reply text
        may quote the address); after one that leaves the session usable, RSET it."""
        enhanced = _ENHANCED_STATUS.search(reply.decode("ascii", "replace"))
        text = f"{code} {enhanced.group(1) if enhanced else ''} ({what})".replace("  ", " ")
        if code == 421 or code < 200:
            self.broken = True
            return TransportError(text, code, what)
        try:
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.broken = True
        if 500 <= code < 600:
            return PermanentMailError(text, code, what)
        return TransientMailError(text, code, what)

    def _transaction(
        self, message: bytes, envelope_from: str, recipients: list[str], payload: bytes | None
    ) -> None:
        smtp = self.smtp
        options = ""
        if smtp.does_esmtp and smtp.has_extn("size"):
            options += f" SIZE={len(message)}"
        encoding = "ascii"
        if not _ascii_transaction(message, envelope_from, recipients):
            if not smtp.has_extn("smtputf8"):
                raise UnsupportedByServerError(NO_SMTPUTF8)
            options += " SMTPUTF8"
            encoding = "utf-8"
        commands = [f"MAIL FROM:<{envelope_from}>{options}"]
        commands += [f"RCPT TO:<{recipient}>" for recipient in recipients]
        if self.chunking:
            # The server reads the chunk whatever it answered to MAIL and RCPT (RFC 3030 2).
            commands.append(f"BDAT {len(message)} LAST")
            envelope = "".join(f"{command}\r\n" for command in commands).encode(encoding)
            smtp.send(envelope + (message if payload is None else payload))
            self.message_ended = True
            replies = [smtp.getreply() for _ in commands]
            refused = self._check_envelope(replies, len(recipients))
            self._check_final(*replies[-1], refused)
            return
        commands.append("DATA")
        if self.pipelining:
            smtp.send("".join(f"{command}\r\n" for command in commands).encode(encoding))
            replies = [smtp.getreply() for _ in commands]
        else:
            replies = []
            for index, command in enumerate(commands):
                smtp.send(f"{command}\r\n".encode(encoding))
                replies.append(smtp.getreply())
                if (index == 0 and replies[0][0] != 250) or replies[-1][0] == 421:
                    break
                if index == len(recipients) and not any(
                    code in (250, 251) for code, _ in replies[1:]
                ):
                    break  # every recipient refused: no DATA
        data_code = replies[-1][0] if len(replies) == len(commands) else None
        if data_code == 354 and (
            replies[0][0] != 250 or not any(c in (250, 251) for c, _ in replies[1:-1])
        ):
            # A pipelining server took DATA without a valid transaction: end it, empty.
            smtp.send(b".\r\n")
            smtp.getreply()
        refused = self._check_envelope(replies, len(recipients))
        if data_code != 354:
            raise self._refused(data_code or 0, replies[-1][1], "data")
        smtp.send(payload if payload is not None else dot_stuffed(message))
        self.message_ended = True
        self._check_final(*smtp.getreply(), refused)

    def _check_envelope(
        self, replies: list[tuple[int, bytes]], recipients: int
    ) -> list[tuple[int, bytes]]:
        """Raise for a closing server, a refused sender or every recipient refused; return the
        refused recipients' replies (the message still goes to the others)."""
        closing = next(((c, r) for c, r in replies if c == 421), None)
        if closing is not None:
            raise self._refused(*closing, "closing")
        mail_code, mail_reply = replies[0]
        if mail_code != 250:
            raise self._refused(mail_code, mail_reply, "sender")
        rcpt_replies = replies[1 : 1 + recipients]
        refused = [(code, reply) for code, reply in rcpt_replies if code not in (250, 251)]
        if len(refused) == len(rcpt_replies):
            raise self._refused(*refused[0], "recipient")
        return refused

    def _check_final(self, code: int, reply: bytes, refused: list[tuple[int, bytes]]) -> None:
        """Raise unless the end of the message was accepted and every recipient was."""
        if code != 250:
            raise self._refused(code, reply, "message")
        if refused:  # delivered to the others (one recipient per message on the send path)
            raise self._refused(*refused[0], "recipient")

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            self.smtp.close()

    def alive(self) -> bool:
        """True when the server still answers (a NOOP) on this session."""
        try:
            return bool(self.smtp.noop()[0] == 250)
        except (OSError, smtplib.SMTPException):
            self.broken = True
            return False

    def reset(self) -> bool:
        """Make the session ready for the next message after a refusal; False if it is dead."""
        if self.broken:
            return False
        try:
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.broken = True
            return False
        return True


class SMTPPool:
    """Open SMTP sessions to one server, reused across batches, at most ``size`` at once.

    ``acquire`` blocks while ``size`` sessions are lent out, which is the per-server connection
    limit. Broken sessions are closed instead of being returned.
    """

    def __init__(self, url: str, size: int, check_after: float = 2.0) -> None:
        self.url = url
        self.check_after = check_after
        self.settings = SMTPSettings.from_url(url)
        self.size = max(1, size)
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: list[SMTPConnection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[SMTPConnection]:
        """Lend an open session; raise TransportError when none can be opened."""
        if not self._slots.acquire(timeout=timeout):  # None: wait as long as it takes
            raise TransportError(f"no free connection to {self.settings.host} in time")
        conn: SMTPConnection | None = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            idle_long = conn is not None and time.monotonic() - conn.last_used > self.check_after
            if conn is not None and idle_long and not conn.alive():  # servers drop idle ones
                conn.smtp.close()
                conn = None
            if conn is None:
                conn = SMTPConnection(self.settings)
            yield conn
        except BaseException:
            if conn is not None:
                conn.broken = True
            raise
        finally:
            if conn is not None:
                if conn.broken:
                    conn.smtp.close()
                else:
                    conn.last_used = time.monotonic()
                    with self._lock:
                        self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        """Close every idle session."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_POOLS: dict[tuple[str, int], SMTPPool] = {}
_POOL_LOCK = threading.Lock()


def smtp_pool(url: str, size: int) -> SMTPPool:
    """The process-wide pool for ``url`` (one per URL and size)."""

    key = (url, size)
    pool = _POOLS.get(key)
    if pool is None:
        with _POOL_LOCK:
            pool = _POOLS.setdefault(key, SMTPPool(url, size))
    return pool


def close_pools() -> None:
    """Close every pooled SMTP session (tests, shutdown)."""
    for pool in list(_POOLS.values()):
        pool.close()
    _POOLS.clear()


class MaildirConnection:
    """Writes each message into a Maildir's ``new/`` folder (the embedded outbox)."""

    def __init__(self, path: str) -> None:
        root = Path(path)
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(path, create=False)

    def send(
        self,
        message: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        payload: bytes | None = None,
    ) -> None:
        """Write the message (with its envelope as headers) into ``new/``."""
        envelope = f"X-Envelope-From: {envelope_from}\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        self.box.add(envelope.encode() + message)

    def payload(self, message: bytes) -> bytes:
        """The message itself (nothing to prepare for a Maildir)."""
        return message

    def close(self) -> None:
        self.box.close()


@contextmanager
def open_connection(smtp_url: str | None = None) -> Iterator[Connection]:
    """Open the configured transport for a batch of messages and close it afterwards."""
    url = smtp_url if smtp_url is not None else current_app.config["SMTP_URL"]
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
    extra = dict(headers or {})
    msg["Message-ID"] = extra.pop("Message-ID", None) or make_msgid(domain=sender_domain(sender))
    for name, value in extra.items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def to_wire(message: EmailMessage) -> bytes:
    """The message as sent over SMTP: CRLF line endings, headers folded for the wire."""
    return message.as_bytes(policy=email_policy.SMTP)


#: Headers a DKIM signature covers (RFC 8058 requires both List-Unsubscribe headers).
DKIM_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


@dataclass(frozen=True)
class DkimSigner:
    """Signs wire-format messages for one domain and selector (relaxed/relaxed, rsa-sha256)."""

    domain: str
    selector: str
    private_key_pem: str

    def sign(self, wire: bytes) -> bytes:
        """The message with a ``DKIM-Signature`` header prepended."""
        import dkim

        signature = dkim.sign(
            wire,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key_pem.encode(),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(DKIM_HEADERS),
        )
        return bytes(signature) + wire


def generate_dkim_key(bits: int = 2048) -> tuple[str, str]:
    """A new RSA key pair: (private key PEM, the DNS TXT value ``v=DKIM1; k=rsa; p=...``)."""

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return private, dkim_dns_record(private)


def dkim_dns_record(private_key_pem: str) -> str:
    """The DNS TXT value that publishes the public half of ``private_key_pem``."""
    import base64

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def send_system_mail(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one transactional message (password reset, confirmation) right away.

    An IDN domain goes in A-labels; an international local part with SMTPUTF8 and raw UTF-8
    headers, or, on a server without it, raises UnsupportedByServerError. An address no server
    can take raises PermanentMailError (its reason names no address)."""
    try:
        address = wire_address(to)
    except AddressError as exc:
        raise PermanentMailError(f"the address cannot be sent to: {exc}") from exc
    msg = build_message(to=address.header, subject=subject, text=text, html=html)
    envelope_from = parseaddr(current_app.config["MAIL_FROM"])[1]
    wire = msg.as_bytes(policy=email_policy.SMTPUTF8) if address.smtputf8 else to_wire(msg)
    with open_connection() as conn:
        conn.send(wire, envelope_from, [address.envelope])
