"""Absolute URLs built from BASE_URL, usable in a request, a worker or a CLI command."""

from __future__ import annotations

from typing import Any

from flask import current_app


def external_url(endpoint: str, **values: Any) -> str:
    """``BASE_URL`` plus the path of ``endpoint``; needs an app context, not a request."""
    adapter = current_app.url_map.bind("localhost")
    path = adapter.build(endpoint, values)
    return f"{current_app.config['BASE_URL']}{path}"
