"""A plain aiosmtpd SMTP sink for the send benchmark: what aiosmtpd offers by default (no
CHUNKING, so the platform and smtplib both send with DATA), counting what arrives.

Run in its own process: ``python bench/plain_sink.py PORT``. Like ``bench/fast_sink.py`` the
extra verb ``XSTAT`` answers ``250 <messages> <bytes>``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class Counts:
    messages = 0
    size = 0


class CountingHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        Counts.messages += 1
        Counts.size += len(envelope.original_content or b"")
        return "250 2.0.0 queued"


class CountingSMTP(SMTP):
    async def smtp_XSTAT(self, arg: str) -> None:
        await self.push(f"250 {Counts.messages} {Counts.size}")


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return CountingSMTP(CountingHandler(), data_size_limit=100_000_000, hostname="sink")

    server = await loop.create_server(factory, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
