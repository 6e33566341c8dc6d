"""The baseline of the tracking benchmark: a bare WSGI app answering the same 43-byte GIF."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tracking.hotpath import PIXEL

HEADERS = [
    ("Content-Type", "image/gif"),
    ("Content-Length", str(len(PIXEL))),
    ("Cache-Control", "no-store, max-age=0"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer every request with the GIF and nothing else."""
    start_response("200 OK", list(HEADERS))
    return [PIXEL]
