"""Fixtures of the campaign tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.campaigns.helpers import RETURN_PATH
from tests.smtp_sink import SMTPSink


@pytest.fixture
def sending_app(app_factory: Any, smtp_sink: SMTPSink) -> Iterator[Flask]:
    """An app that sends with VERP envelope senders to the SMTP sink, in an app context."""
    app: Flask = app_factory(
        RETURN_PATH=RETURN_PATH, BOUNCE_WEBHOOK_SECRET="webhook-secret", SOFT_BOUNCE_LIMIT=2
    )
    app.extensions["test_sink"] = smtp_sink
    with app.app_context():
        yield app
