"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
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
        with self.sink.lock:
            self.sink.messages.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SMTPSink:
    """Start with :meth:`start`; ``messages`` holds every accepted message."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.scripted_replies: dict[tuple[str, str], list[str]] = {}
        #: Offer PIPELINING in the EHLO answer.
        self.pipelining = True
        #: Offer SMTPUTF8 (RFC 6531) in the EHLO answer.
        self.smtputf8 = True
        self.port = _free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> SMTPSink:
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
            self.pipelining = True
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

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.recipients]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
