"""A local webhook receiver on 127.0.0.1 that records every request and answers as told, and
an independent Standard Webhooks verifier (HMAC computed here, not by the code under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """``url`` receives POSTs; ``answers`` (a list of status codes) is consumed first, then
    ``default`` is answered."""

    def __init__(self, default: int = 200) -> None:
        self.default = default
        self.answers: list[int] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner.lock:
                    owner.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    code = owner.answers.pop(0) if owner.answers else owner.default
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, event_type: str) -> list[Request]:
        return [r for r in self.requests if r.json.get("type") == event_type]


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, id.timestamp.body)>``, computed from the spec alone."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def verifies(secret: str, request: Request) -> bool:
    """Whether one of the request's signatures is the one ``secret`` gives (constant time)."""
    wanted = expected_signature(
        secret, request.headers["webhook-id"], request.headers["webhook-timestamp"], request.body
    )
    return any(
        hmac.compare_digest(wanted, given)
        for given in request.headers["webhook-signature"].split(" ")
    )
