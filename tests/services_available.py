"""Which real services this run may use, and the CI rule: under CI=true a missing one fails."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    """Fail under CI, skip elsewhere, when ``service`` (postgres, redis, chromium, curl-and-jq)
    is missing."""
    available = {
        "postgres": lambda: _port_open("127.0.0.1", 5432),
        "redis": lambda: _port_open("127.0.0.1", 6379),
        "chromium": lambda: shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM),
        # docs/api.md's examples (tests/api/test_guide.py)
        "curl-and-jq": lambda: all(shutil.which(tool) for tool in ("curl", "jq")),
    }[service]()
    if available:
        return
    reason = f"{service} is not available on this machine"
    if IN_CI:
        pytest.fail(f"{reason}, and CI=true requires it", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")
