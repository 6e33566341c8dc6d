"""The engine's settings: the app config first, then the environment, then a default."""

from __future__ import annotations

import os
from typing import Any

from flask import current_app

from core.config import _development_secret

DEFAULTS: dict[str, Any] = {
    # Hard bounces and complaints count for suppression; a delivery after a bounce revives.
    # Send-time optimisation needs at least this many human opens/clicks of an address.
    "ENGINE_MIN_ENGAGEMENTS": 2,
    # Pacing: look at this many days of a domain's outcomes ...
    "ENGINE_PACING_DAYS": 7,
    # ... with at least this many delivery attempts ...
    "ENGINE_PACING_MIN_ATTEMPTS": 20,
    # ... and slow it down once this share of attempts is deferred ...
    "ENGINE_DEFERRAL_THRESHOLD": 0.05,
    # ... to this many messages per minute at the threshold, halved each time the rate doubles,
    "ENGINE_PACE_PER_MINUTE": 300,
    # ... never below this.
    "ENGINE_MIN_PACE_PER_MINUTE": 5,
    # Contributions older than this are dropped by the maintenance job.
    "ENGINE_RETENTION_DAYS": 365,
    # The operator page lumps domains with fewer known addresses than this together.
    "ENGINE_OPERATOR_MIN_ADDRESSES": 5,
}


def setting(name: str) -> Any:
    """The value of an ENGINE_* setting, typed like its default."""
    default = DEFAULTS[name]
    raw = current_app.config.get(name)
    if raw is None:
        raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return type(default)(raw)


def hash_key() -> bytes:
    """The engine's own HMAC key (ENGINE_HASH_KEY), distinct from ADDRESS_HASH_KEY.

    Never rotate it: the engine's learned rows are keyed by it. Without configuration a random
    key is kept in ``var/engine_hash_key``, as for the other embedded secrets.
    """
    value = current_app.config.get("ENGINE_HASH_KEY") or os.environ.get("ENGINE_HASH_KEY")
    if not value:
        value = _development_secret("engine_hash_key")
        current_app.config["ENGINE_HASH_KEY"] = value
    return str(value).encode()
