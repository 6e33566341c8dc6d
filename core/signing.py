"""Signed tokens: one serializer per purpose, a rotating key list, ids only in payloads.

itsdangerous takes the key list oldest first: the last key signs, every key verifies. A token
signed for one purpose never verifies for another because each purpose has its own salt.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer, URLSafeTimedSerializer


class Purpose(StrEnum):
    """Every purpose a token can serve; the value is the salt."""

    OPEN = "tracking.open"
    CLICK = "tracking.click"
    UNSUBSCRIBE = "tracking.unsubscribe"
    HONEYPOT = "tracking.honeypot"  # the hidden link per message that only machines follow
    PASSWORD_RESET = "accounts.password-reset"  # noqa: S105 (a salt, not a password)
    INVITATION = "accounts.invitation"
    ACCOUNT_DELETION = "accounts.deletion"
    SIGNUP_CONFIRM = "subscribers.signup-confirm"
    PREFERENCES = "subscribers.preferences"
    DATA_REQUEST_CONFIRM = "privacy.request-confirm"
    DOWNLOAD = "privacy.download"
    SENDER_VERIFY = "campaigns.sender-verify"


class BadTokenError(Exception):
    """Malformed, tampered, expired, signed with an unknown key, or made for another purpose."""


def _keys() -> list[str]:
    return list(current_app.config["SECRET_KEYS"])


def sign(purpose: Purpose, payload: Any) -> str:
    """Sign a payload that never expires (tracking links must work for years)."""
    return URLSafeSerializer(_keys(), salt=purpose.value).dumps(payload)


def unsign(purpose: Purpose, token: str) -> Any:
    """Return the payload of a token made by :func:`sign` for ``purpose``."""
    try:
        return URLSafeSerializer(_keys(), salt=purpose.value).loads(token)
    except BadData as exc:
        raise BadTokenError(str(exc)) from exc


def sign_timed(purpose: Purpose, payload: Any) -> str:
    """Sign a payload with a timestamp; verify it with :func:`unsign_timed` and a max age."""
    return URLSafeTimedSerializer(_keys(), salt=purpose.value).dumps(payload)


def unsign_timed(purpose: Purpose, token: str, max_age: int) -> Any:
    """Return the payload of a timed token no older than ``max_age`` seconds."""
    try:
        return URLSafeTimedSerializer(_keys(), salt=purpose.value).loads(token, max_age=max_age)
    except BadData as exc:
        raise BadTokenError(str(exc)) from exc
