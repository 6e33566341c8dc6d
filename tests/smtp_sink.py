"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

It offers PIPELINING and CHUNKING (BDAT, RFC 3030, which aiosmtpd lacks and this module adds)
as production MTAs such as Postfix do; a test can turn either off. A test can also have it cut
the connection at a point of a recipient's transaction (:meth:`SMTPSink.drop_for`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from typing import Any

import idna
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP


def unicode_address(address: str) -> str:
    """``address`` with an A-label domain written as U-labels (others unchanged)."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return address
    return f"{local}@{idna.decode(domain)}"


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    data: bytes
    #: The command that brought the message: ``DATA`` or ``BDAT``.
    via: str = "DATA"
    #: The MAIL FROM parameters, e.g. ``["SIZE=1234", "SMTPUTF8"]``.
    mail_options: list[str] = field(default_factory=list)

    @property
    def unicode_recipients(self) -> list[str]:
        """The envelope recipients with their domains as U-labels (the sender writes domains
        in A-labels on the wire), to find a message by the address a contact was stored with."""
        return [unicode_address(address) for address in self.recipients]

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def utf8_message(self) -> EmailMessage:
        """The message parsed as RFC 6532 text (raw UTF-8 headers read as UTF-8)."""
        parsed = message_from_string(self.data.decode("utf-8"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Offer PIPELINING (RFC 2920) as production MTAs do, unless the sink is told not to."""
        session.host_name = hostname
        if not self.sink.smtputf8:
            responses = [r for r in responses if "SMTPUTF8" not in r]
        if self.sink.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if self.sink.chunking:
            responses.insert(-1, "250-CHUNKING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        code = self.sink.next_reply([address], stage="mail")
        if code:
            return code
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        code = self.sink.next_reply([address], stage="rcpt")
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        code = self.sink.next_reply(envelope.rcpt_tos)
        if code:
            return code
        cut = self.sink.next_drop(envelope.rcpt_tos, "after-end")
        with self.sink.lock:
            self.sink.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content),
                    "BDAT" if getattr(envelope, "bdat_chunks", None) is not None else "DATA",
                    [str(option) for option in envelope.mail_options],
                )
            )
        if cut:  # taken (and delivered, as far as anyone knows), but the reply never leaves
            server.transport.abort()
        return "250 OK"


class _ChunkingSMTP(SMTP):
    """aiosmtpd's server plus BDAT: the chunks of a transaction are kept on its envelope and
    handed to the handler's DATA hook at ``LAST``, as DATA would hand the message over."""

    def _cut_before_end(self) -> bool:
        """Cut the connection here (before the end of the message) when a test asked."""
        sink: SMTPSink = self.event_handler.sink
        envelope = self.envelope
        if envelope is not None and sink.next_drop(envelope.rcpt_tos, "before-end"):
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.abort()
            return True
        return False

    async def smtp_DATA(self, arg: str) -> None:
        if self._cut_before_end():
            return
        await super().smtp_DATA(arg)

    async def smtp_BDAT(self, arg: str) -> None:
        if self._cut_before_end():
            return
        parts = arg.upper().split()
        if not (1 <= len(parts) <= 2 and parts[0].isdigit()) or parts[1:] not in ([], ["LAST"]):
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            return
        # The chunk is read whatever the answer, or it would be taken for commands.
        chunk = await self._reader.readexactly(int(parts[0]))
        envelope = self.envelope
        assert envelope is not None
        if envelope.mail_from is None or not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need MAIL and RCPT first")
            return
        chunks: bytearray = getattr(envelope, "bdat_chunks", bytearray())
        chunks += chunk
        envelope.bdat_chunks = chunks  # type: ignore[attr-defined]
        if not parts[1:]:
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        envelope.original_content = envelope.content = bytes(chunks)
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _ChunkingSMTP(self.handler, **self.SMTP_kwargs)


class _Authenticator:
    """Accepts one user name and password (aiosmtpd's authenticator callback)."""

    def __init__(self, user: str, password: str) -> None:
        self.login = (user.encode(), password.encode())

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self.login
        return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SMTPSink:
    """Start with :meth:`start`; ``messages`` holds every accepted message."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        """With ``credentials`` (user, password) the sink requires AUTH LOGIN/PLAIN with them."""
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.scripted_replies: dict[tuple[str, str], list[str]] = {}
        self.drops: dict[str, list[str]] = {}
        #: Offer PIPELINING in the EHLO answer.
        self.pipelining = True
        #: Offer CHUNKING (BDAT, RFC 3030) in the EHLO answer.
        self.chunking = True
        #: Offer SMTPUTF8 (RFC 6531) in the EHLO answer.
        self.smtputf8 = True
        self.port = _free_port()
        auth: dict[str, Any] = {}
        if credentials is not None:
            auth = {
                "auth_required": True,
                "auth_require_tls": False,  # loopback only
                "authenticator": _Authenticator(*credentials),
            }
        # A fixed server name: without one aiosmtpd calls socket.getfqdn() for every connection,
        # inside its event loop, and a slow resolver there stalls every greeting (a CI run
        # timed out waiting 30 s for one).
        self.controller = _Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="sink.test",
            **auth,
        )

    def start(self) -> SMTPSink:
        with warnings.catch_warnings():
            # AUTH without TLS: the sink listens on loopback only.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=0"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.scripted_replies.clear()
            self.drops.clear()
            self.pipelining = True
            self.chunking = True
            self.smtputf8 = True

    def reply_for(self, address: str, *codes: str, stage: str = "data") -> None:
        """Answer the next ``stage`` (``mail`` for a sender, ``rcpt`` or ``data`` for a
        recipient) naming ``address`` with these codes in turn (e.g. '451 later')."""
        self.scripted_replies.setdefault((stage, address), []).extend(codes)

    def next_reply(self, addresses: list[str], stage: str = "data") -> str | None:
        with self.lock:
            for address in addresses:
                queued = self.scripted_replies.get((stage, address))
                if queued:
                    return queued.pop(0)
        return None

    def drop_for(self, address: str, *points: str) -> None:
        """Cut the connection (no reply) in ``address``'s next transactions, one point each:
        ``before-end`` on its DATA or BDAT command (the message never ends), ``after-end``
        once the whole message arrived (kept in ``messages``) and before the reply to it."""
        with self.lock:
            self.drops.setdefault(address, []).extend(points)

    def next_drop(self, addresses: list[str], point: str) -> bool:
        with self.lock:
            for address in addresses:
                queued = self.drops.get(address)
                if queued and queued[0] == point:
                    queued.pop(0)
                    return True
        return False

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [
                m
                for m in self.messages
                if address in m.recipients or address in m.unicode_recipients
            ]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
