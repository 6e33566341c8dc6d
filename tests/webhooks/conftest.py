from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """Webhooks may go to the local receiver on 127.0.0.1 (the operator setting is on)."""
    built: Flask = app_factory(WEBHOOKS_ALLOW_PRIVATE_TARGETS=True)
    return built
