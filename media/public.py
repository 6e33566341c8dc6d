"""The public path of images in emails: ``GET|HEAD /img/<name>``.

Answered in front of Flask (WSGI middleware, like the tracking hot path), so the request opens
no session, sets no cookie, writes nothing and is not logged by the app: the only trace is the
web server's access line, which ``core.gunicorn_log`` writes without the client's address and
with the 32-character name replaced by ``<token>``. The name is 128 random bits, the same for
every recipient (no per-recipient token), so a load says nothing about who loaded it. Long
cache headers (the bytes under a name never change), the stored type, ``nosniff``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from media import storage
from media.images import CONTENT_TYPES

PREFIX = "/img/"
StartResponse = Callable[..., Any]


def answer(app: Flask, name: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body for ``name`` (404 for any name not stored)."""
    data = storage.for_app(app).get(name) if storage.valid_name(name) else None
    if data is None:
        return (
            "404 Not Found",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
            ],
            b"Not found.\n",
        )
    extension = "png" if name.endswith("-thumb.png") else name.rsplit(".", 1)[1]
    seconds = int(app.config["MEDIA_CACHE_SECONDS"])
    return (
        "200 OK",
        [
            ("Content-Type", CONTENT_TYPES[extension]),
            ("Content-Length", str(len(data))),
            ("Cache-Control", f"public, max-age={seconds}, immutable"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'none'; sandbox"),
            ("Cross-Origin-Resource-Policy", "cross-origin"),
            ("Referrer-Policy", "no-referrer"),
        ],
        data,
    )


class PublicImages:
    """WSGI middleware answering ``GET|HEAD /img/<name>`` before Flask."""

    def __init__(self, app: Flask, wrapped: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wrapped = wrapped

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path.startswith(PREFIX) and method in ("GET", "HEAD"):
            status, headers, body = answer(self.app, path[len(PREFIX) :])
            start_response(status, headers)
            return [] if method == "HEAD" else [body]
        return self.wrapped(environ, start_response)


def install(app: Flask) -> None:
    """Put the public image path in front of ``app`` (once)."""
    if not isinstance(app.wsgi_app, PublicImages):
        app.wsgi_app = PublicImages(app, app.wsgi_app)  # type: ignore[method-assign]
