"""Throttling of sends: messages per second per account and per SMTP server, and concurrent
messages per recipient domain.

Limits are shared by every worker process through Redis when ``REDIS_URL`` is set, and kept in
memory otherwise (in-process queue). Counters live a few seconds; a Redis restart only resets
them. Per-domain pacing comes from the Delivery Optimization Engine, asked through its gate
(:func:`privacy.engine_gate.pacing_pause`); per-recipient send times are ``Message.due_at``
(the sender never claims a row before it).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app

from privacy import engine_gate


def domain_pause(account_id: int, domain: str) -> float:
    """Seconds to wait before sending to ``domain``: the engine's pace for it, through the
    privacy gate (0 when none is known or the account does not take part)."""
    return max(0.0, float(engine_gate.pacing_pause(account_id, domain)))


def _window(per_second: float) -> tuple[int, int]:
    """A fixed window (seconds) and how many sends it allows, for a rate per second."""
    window = max(1, math.ceil(1 / per_second))
    return window, max(1, math.floor(per_second * window))


class _MemoryCounters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, ttl: int) -> int:
        now = time.monotonic()
        with self.lock:
            value, expires = self.values.get(key, (0, 0.0))
            if expires < now:
                value = 0
            value += 1
            self.values[key] = (value, now + ttl)
            if len(self.values) > 10_000:
                self.values = {k: v for k, v in self.values.items() if v[1] >= now}
            return value

    def decr(self, key: str) -> None:
        with self.lock:
            value, expires = self.values.get(key, (0, 0.0))
            self.values[key] = (max(0, value - 1), expires)


_memory = _MemoryCounters()


class Throttle:
    """The limits of one worker process, backed by Redis or memory."""

    def __init__(self, redis_client: Any | None, prefix: str) -> None:
        self.redis = redis_client
        self.prefix = prefix

    def _incr(self, key: str, ttl: int) -> int:
        if self.redis is None:
            return _memory.incr(key, ttl)
        pipe = self.redis.pipeline()
        pipe.incr(f"{self.prefix}:{key}")
        pipe.expire(f"{self.prefix}:{key}", ttl)
        return int(pipe.execute()[0])

    def _decr(self, key: str) -> None:
        if self.redis is None:
            _memory.decr(key)
        else:
            self.redis.decr(f"{self.prefix}:{key}")

    def wait_for_rate(
        self, key: str, per_second: float, deadline: float, stop: threading.Event | None = None
    ) -> bool:
        """Block until one more send under ``key`` fits ``per_second``; False at ``deadline``
        or as soon as ``stop`` is set."""
        if per_second <= 0:
            return True
        window, allowed = _window(per_second)
        while True:
            now = time.time()
            slot = int(now // window)
            if self._incr(f"rate:{key}:{slot}", window + 2) <= allowed:
                return True
            wake = (slot + 1) * window
            if wake > deadline:
                return False
            if stop is None:
                time.sleep(max(0.0, wake - now))
            elif stop.wait(max(0.0, wake - now)):
                return False

    @contextmanager
    def domain_slot(
        self, account_id: int, domain: str, limit: int, wait: float = 5.0
    ) -> Iterator[bool]:
        """Hold one of ``limit`` concurrent sends to ``domain``; yields False if none came free
        within ``wait`` seconds (the caller puts the message back for later)."""
        pause = domain_pause(account_id, domain)
        if pause > 0:
            time.sleep(min(pause, 5.0))
        if limit <= 0:
            yield True
            return
        key = f"domain:{account_id}:{domain}"
        give_up = time.monotonic() + wait
        while self._incr(key, 300) > limit:
            self._decr(key)
            if time.monotonic() > give_up:
                yield False
                return
            time.sleep(0.02)
        try:
            yield True
        finally:
            self._decr(key)


def current_throttle() -> Throttle:
    """The throttle of the current app: Redis-backed when the app uses Redis."""
    app = current_app
    throttle = app.extensions.get("campaigns.throttle")
    if throttle is None:
        url = app.config["REDIS_URL"]
        client = None
        if url:
            import redis

            client = redis.Redis.from_url(url)
        throttle = Throttle(client, f"{app.config['REDIS_NAMESPACE']}:throttle")
        app.extensions["campaigns.throttle"] = throttle
    return throttle
