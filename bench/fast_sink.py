"""A minimal, fast SMTP sink (asyncio) for benchmarks: accepts everything, keeps counts only.

Run in its own process: ``python bench/fast_sink.py PORT``. It offers PIPELINING and CHUNKING
(BDAT, RFC 3030) as Postfix does by default. The extra verb ``XSTAT`` answers
``250 <messages> <bytes>`` so a benchmark can check what arrived.
"""

from __future__ import annotations

import asyncio
import sys


class Counts:
    messages = 0
    size = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    chunked = 0  # octets of the BDAT chunks of the current message
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(
                    b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
                    b"250 SIZE 100000000\r\n"
                )
            elif verb == b"HELO":
                writer.write(b"250 sink\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                body = await reader.readuntil(b"\r\n.\r\n")
                Counts.messages += 1
                Counts.size += len(body)
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"BDAT":
                words = line.split()
                chunked += len(await reader.readexactly(int(words[1])))
                if len(words) > 2 and words[2].upper() == b"LAST":
                    Counts.messages += 1
                    Counts.size += chunked
                    chunked = 0
                    writer.write(b"250 2.0.0 queued\r\n")
                else:
                    writer.write(b"250 2.0.0 chunk received\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            elif verb == b"XSTA":
                writer.write(f"250 {Counts.messages} {Counts.size}\r\n".encode())
            else:  # MAIL, RCPT, RSET, NOOP
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=64 * 1024 * 1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
