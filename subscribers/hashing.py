"""The keyed hash of an address: what suppressions hold, and what each contact row keeps.

An HMAC-SHA256 of the lower-cased, stripped address under ``ADDRESS_HASH_KEY``. The key must
never change (see :mod:`subscribers.suppression`). Kept on ``contacts.address_hash`` so that a
count of an audience against the suppression list is a join, not a hash of every address.
"""

from __future__ import annotations

import hashlib
import hmac


def address_hash_with(key: bytes, email: str) -> str:
    """The keyed hash of ``email`` under ``key`` (for code that holds the key already)."""
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def address_hash(email: str) -> str:
    """The keyed hash an address is suppressed under, with the app's ``ADDRESS_HASH_KEY``."""
    from flask import current_app  # here: the import's helper processes load no Flask

    return address_hash_with(str(current_app.config["ADDRESS_HASH_KEY"]).encode(), email)
