"""The engine's settings (``ENGINE_*``), declared and typed in ``core/settings.py``."""

from __future__ import annotations

from flask import current_app

from core.settings import development_secret, setting

__all__ = ["hash_key", "setting"]


def hash_key() -> bytes:
    """The engine's own HMAC key (ENGINE_HASH_KEY), distinct from ADDRESS_HASH_KEY.

    Never rotate it: the engine's learned rows are keyed by it. Without configuration a random
    key is kept in ``var/engine_hash_key``, as for the other embedded secrets.
    """
    value = current_app.config["ENGINE_HASH_KEY"]
    if not value:
        value = development_secret(current_app.config["VAR_DIR"], "engine_hash_key")
        current_app.config["ENGINE_HASH_KEY"] = value
    return str(value).encode()
