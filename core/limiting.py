"""Rate-limit storage shared by the login throttle and the public forms' bot check.

Built on the ``limits`` library (the engine of Flask-Limiter): in Redis when ``REDIS_URL`` is
set (shared by every process), in memory on the embedded default. One storage and one
moving-window limiter per app and purpose, each purpose under its own key prefix.
"""

from __future__ import annotations

from typing import cast

from flask import current_app
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter


def storage(purpose: str) -> Storage:
    """The current app's storage for ``purpose`` (e.g. ``login-throttle``), made once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = f"limits_storage:{purpose}"
    found: Storage | None = app.extensions.get(key)
    if found is None:
        url = app.config["REDIS_URL"]
        made = (
            storage_from_string(url, key_prefix=f"{app.config['REDIS_NAMESPACE']}:{purpose}")
            if url
            else storage_from_string("memory://")
        )
        found = app.extensions[key] = cast(Storage, made)  # a synchronous URL: never aio
    return found


def moving_window(purpose: str) -> MovingWindowRateLimiter:
    """The current app's moving-window limiter for ``purpose``, on :func:`storage`."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = f"limits_limiter:{purpose}"
    found: MovingWindowRateLimiter | None = app.extensions.get(key)
    if found is None:
        found = app.extensions[key] = MovingWindowRateLimiter(storage(purpose))
    return found
