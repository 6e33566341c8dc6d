"""core.recent: a value worked out in the last ``seconds`` is reused for the same name and key,
per app; another key, another app or an expired value is worked out again; the store stays
bounded."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from flask import Flask

from core import recent


def _counter() -> Callable[[], int]:
    calls = count(1)
    return lambda: next(calls)


def test_a_recent_value_is_reused_for_the_same_key_only() -> None:
    app, other = Flask("one"), Flask("two")
    compute = _counter()
    with app.app_context():
        assert recent.remembered("n", ("a", 1), compute, 60) == 1
        assert recent.remembered("n", ("a", 1), compute, 60) == 1
        assert recent.remembered("n", ("a", 2), compute, 60) == 2
        assert recent.remembered("m", ("a", 1), compute, 60) == 3
        assert recent.remembered("n", ("a", 1), compute, 0) == 4  # expired at once
    with other.app_context():
        assert recent.remembered("n", ("a", 1), compute, 60) == 5


def test_the_store_is_bounded() -> None:
    app = Flask("bounded")
    with app.app_context():
        for key in range(recent.MAX_ENTRIES * 2):
            recent.remembered("n", key, lambda: 0, 60)
        assert len(app.extensions["recent.n"]) <= recent.MAX_ENTRIES
