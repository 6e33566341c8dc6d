"""Values this process worked out in the last minute or so, per app.

For pages a marketer reloads while editing (the campaign page, on each preview and save):
a count over a million contacts takes a second or more, and a minute-old figure is what the
page would have shown a minute ago. Never for what must be exact at the moment (the send
confirmation counts afresh).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import current_app

T = TypeVar("T")

#: How long a campaign page's figures are reused while the marketer edits.
EDITING_SECONDS = 60.0
#: Entries kept per name before the store is emptied (a bound, not a policy).
MAX_ENTRIES = 256


def remembered(name: str, key: Hashable, compute: Callable[[], T], seconds: float) -> T:
    """``compute()``, or its value for the same ``name`` and ``key`` from this process's app
    if worked out less than ``seconds`` ago."""
    store: dict[Hashable, tuple[float, Any]] = current_app.extensions.setdefault(
        f"recent.{name}", {}
    )
    now = time.monotonic()
    found = store.get(key)
    if found is not None and now - found[0] < seconds:
        value: T = found[1]
        return value
    value = compute()
    if len(store) >= MAX_ENTRIES:
        store.clear()
    store[key] = (now, value)
    return value
