"""The beacon, click and honeypot endpoints as a thin WSGI layer in front of Flask.

These are the platform's hot path, so they are answered before Flask's request machinery:
verify the signed token, reduce the request through :func:`privacy.policy.minimise`, push the
hit into the buffer, answer. No database write ever happens here, and no database read either
except the account's IP setting on a cache miss (kept for ``TRACKING_SETTINGS_CACHE_SECONDS``);
if that read fails the IP is dropped, the most private choice. The GIF is always served and a
valid click always redirects to the destination bound in its token, whatever fails.
Anything that is not a well-formed GET or HEAD on these paths goes on to Flask.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.urls import iri_to_uri

from core.logsafe import log_failure
from core.signing import BadTokenError
from privacy import policy
from tracking import buffer as hit_buffer
from tracking.hits import encode_hit
from tracking.urls import TokenReader

log = logging.getLogger(__name__)

#: A 1x1 transparent GIF, 43 bytes.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
HONEYPOT_BODY = b"Nothing to see here.\n"

#: Headers of every public tracking answer: no caching, no referrer, no cookie ever.
_COMMON = [
    ("Cache-Control", "no-store, max-age=0"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]
_GIF_HEADERS = [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL))), *_COMMON]
_HONEYPOT_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(HONEYPOT_BODY))),
    ("X-Robots-Tag", "noindex, nofollow"),
    *_COMMON,
]

StartResponse = Callable[..., Any]


class IpModeCache:
    """The IP handling (truncate or drop) of each campaign's account, cached per process."""

    def __init__(self, app: Flask, ttl: float) -> None:
        self.app = app
        self.ttl = ttl
        self._modes: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def mode(self, campaign_id: int) -> str:
        """The mode; on a miss one read; when the read fails, ``drop`` for a few seconds."""
        now = time.monotonic()
        cached = self._modes.get(campaign_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        ttl = self.ttl
        try:
            from accounts import queries as account_queries

            with self.app.app_context():
                mode = account_queries.ip_handling_for_campaign(campaign_id)
        except Exception:
            log.warning("account settings unreadable; dropping the IP of this hit")
            mode, ttl = policy.IP_MODE_UNKNOWN, min(ttl, 5.0)
        with self._lock:
            if len(self._modes) > 50_000:
                self._modes.clear()
            self._modes[campaign_id] = (mode, now + ttl)
        return mode


class Recorder:
    """Turns a verified token and the request into a reduced hit in the buffer."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.ip_modes = IpModeCache(app, float(app.config["TRACKING_SETTINGS_CACHE_SECONDS"]))
        self.keys: tuple[str, ...] = ()
        self._reader: TokenReader | None = None

    @property
    def reader(self) -> TokenReader:
        keys = tuple(self.app.config["SECRET_KEYS"])
        if self._reader is None or keys != self.keys:
            self._reader, self.keys = TokenReader(list(keys)), keys
        return self._reader

    def record(
        self,
        kind: str,
        campaign_id: int,
        message_id: int | None,
        link_id: int | None,
        environ: dict[str, Any],
    ) -> None:
        """Reduce the request and buffer the hit. Never raises: the answer must go out."""
        try:
            reduced = policy.minimise(
                environ.get("REMOTE_ADDR"),
                environ.get("HTTP_USER_AGENT"),
                self.ip_modes.mode(campaign_id),
            )
            hit_buffer.get_buffer(self.app).push(
                encode_hit(
                    kind,
                    campaign_id,
                    message_id,
                    link_id,
                    reduced.ip_prefix,
                    reduced.ua_class,
                    "HEAD" if environ.get("REQUEST_METHOD") == "HEAD" else "GET",
                )
            )
        except Exception as exc:
            # Never the raw IP or agent in a log line: only what kind of hit was lost.
            log_failure(log, exc, "could not buffer a %s hit of campaign %s", kind, campaign_id)

    def beacon(self, token: str, environ: dict[str, Any]) -> None:
        """Record an open for a valid beacon token; ignore anything else."""
        try:
            parsed = self.reader.open(token)
        except BadTokenError:
            return
        self.record("open", parsed.campaign_id, parsed.message_id, None, environ)

    def click(self, token: str, environ: dict[str, Any]) -> str | None:
        """Record a click and return its signed destination, or None for a bad token."""
        try:
            parsed = self.reader.click(token)
        except BadTokenError:
            return None
        if not parsed.test:  # a test message's link lands and records nothing
            self.record("click", parsed.campaign_id, parsed.message_id, parsed.link_id, environ)
        return parsed.url

    def honeypot(self, token: str, environ: dict[str, Any]) -> bool:
        """Record a fetch of the hidden link; False for a bad token."""
        try:
            parsed = self.reader.honeypot(token)
        except BadTokenError:
            return False
        self.record("honeypot", parsed.campaign_id, parsed.message_id, None, environ)
        return True


def recorder(app: Flask) -> Recorder:
    """The recorder of ``app`` (one per app)."""
    found = app.extensions.get("tracking_recorder")
    if found is None:
        found = app.extensions["tracking_recorder"] = Recorder(app)
    result: Recorder = found
    return result


#: A destination made only of these characters is already a URI: ``iri_to_uri`` would quote
#: nothing in it (at most lower-case its host), so it goes out as signed.
_PLAIN_URI = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,/:;=?@#]+")


def redirect_headers(url: str) -> list[tuple[str, str]]:
    """Headers of a click's 302: the signed destination as a URI, no referrer, no cookie."""
    location = url if _PLAIN_URI.fullmatch(url) else iri_to_uri(url)
    return [("Location", location), ("Content-Length", "0"), *_COMMON]


class TrackingHotPath:
    """WSGI middleware answering ``GET|HEAD /o/…``, ``/c/…`` and ``/h/…`` before Flask."""

    def __init__(self, app: Flask, wrapped: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wrapped = wrapped
        self.recorder = recorder(app)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if len(path) > 3 and path[0] == "/" and path[2] == "/" and method in ("GET", "HEAD"):
            head = method == "HEAD"
            prefix, token = path[1], path[3:]
            if "/" not in token:
                if prefix == "o" and token.endswith(".gif"):
                    self.recorder.beacon(token, environ)
                    start_response("200 OK", list(_GIF_HEADERS))
                    return [] if head else [PIXEL]
                if prefix == "c":
                    url = self.recorder.click(token, environ)
                    if url is not None:
                        start_response("302 Found", redirect_headers(url))
                        return []
                elif prefix == "h" and self.recorder.honeypot(token, environ):
                    start_response("200 OK", list(_HONEYPOT_HEADERS))
                    return [] if head else [HONEYPOT_BODY]
        return self.wrapped(environ, start_response)


def install(app: Flask) -> None:
    """Put the hot path in front of ``app`` (once)."""
    if not isinstance(app.wsgi_app, TrackingHotPath):
        app.wsgi_app = TrackingHotPath(app, app.wsgi_app)  # type: ignore[method-assign]
