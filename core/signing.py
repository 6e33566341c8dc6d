"""Signed tokens: one serializer per purpose, a rotating key list, ids only in payloads.

itsdangerous takes the key list oldest first: the last key signs, every key verifies. A token
signed for one purpose never verifies for another because each purpose has its own salt.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Any

from flask import current_app
from itsdangerous import BadData, Serializer, Signer, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, want_bytes


class Purpose(StrEnum):
    """Every purpose a token can serve; the value is the salt."""

    OPEN = "tracking.open"
    CLICK = "tracking.click"
    UNSUBSCRIBE = "tracking.unsubscribe"
    UNSUBSCRIBE_UNDO = "tracking.unsubscribe-undo"  # the short-lived "undo" of an unsubscribe
    HONEYPOT = "tracking.honeypot"  # the hidden link per message that only machines follow
    PASSWORD_RESET = "accounts.password-reset"  # noqa: S105 (a salt, not a password)
    INVITATION = "accounts.invitation"
    ACCOUNT_DELETION = "accounts.deletion"
    SIGNUP_CONFIRM = "subscribers.signup-confirm"
    PREFERENCES = "subscribers.preferences"
    DATA_REQUEST_CONFIRM = "privacy.request-confirm"
    DOWNLOAD = "privacy.download"
    SENDER_VERIFY = "campaigns.sender-verify"
    BOT_CHALLENGE = "core.bot-challenge"  # the public forms' proof of work (core/botcheck.py)
    API_CURSOR = "api.cursor"  # a page cursor of the REST API (api/paging.py)


class BadTokenError(Exception):
    """Malformed, tampered, expired, signed with an unknown key, or made for another purpose."""


def _keys() -> list[str]:
    return list(current_app.config["SECRET_KEYS"])


#: Payloads shorter than this are never compressed: zlib cannot make them shorter, and trying
#: costs more than the rest of signing. Longer ones (click tokens with long URLs) may be.
_COMPRESS_FROM = 160


class _KeyCachingSigner(Signer):
    """itsdangerous's ``Signer`` that derives each secret key's signing key once: the stock one
    derives it again (a SHA-1) on every sign and every verification. Its digest is
    ``hashlib.sha1`` itself, the same SHA-1 as the stock lazy wrapper, which lets ``hmac`` use
    OpenSSL's HMAC instead of its pure-Python fallback."""

    default_digest_method = staticmethod(hashlib.sha1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(key)
        return derived


class _TokenSerializer(URLSafeSerializer):
    """``URLSafeSerializer`` that does not try zlib on short payloads (same token format: a
    compressed payload is marked by a leading dot, so every token verifies as before), and
    keeps one signer for its salt instead of building one per token (same signatures)."""

    default_signer = _KeyCachingSigner

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._own_signer: Signer | None = None
        self._keys: list[bytes] | None = None

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None and want_bytes(salt) != self.salt:
            return super().make_signer(salt)
        if self._own_signer is None:
            self._own_signer = super().make_signer(salt)
        return self._own_signer

    def loads(self, s: str | bytes, salt: str | bytes | None = None, **kwargs: Any) -> Any:
        """Stock ``loads``, with a shorter road for a token that verifies: one ``hmac.digest``
        per key (newest first) on the signer's own derived keys. Anything else (a bad
        signature, another salt, fallback signers) takes the stock road and its errors."""
        if salt is None and not kwargs and not self.fallback_signers:
            value, sep, signature = want_bytes(s).rpartition(b".")
            if sep and value:
                for key in self._verifying_keys():
                    expected = base64_encode(hmac.digest(key, value, "sha1"))
                    if hmac.compare_digest(expected, signature):
                        return self.load_payload(value)
        return super().loads(s, salt, **kwargs)

    def _verifying_keys(self) -> list[bytes]:
        if self._keys is None:
            signer = self.make_signer()
            self._keys = [signer.derive_key(key) for key in reversed(signer.secret_keys)]
        return self._keys

    def dump_payload(self, obj: Any) -> bytes:
        json = Serializer.dump_payload(self, obj)
        if len(json) < _COMPRESS_FROM:
            return base64_encode(json)
        return super().dump_payload(obj)


#: One serializer per (key list, purpose): building one derives its keys, per token that was
#: most of the cost of rendering a message's links.
_SERIALIZERS: dict[tuple[tuple[str, ...], Purpose], _TokenSerializer] = {}


def serializer(keys: tuple[str, ...], purpose: Purpose) -> URLSafeSerializer:
    """The (cached) serializer of ``purpose`` for a key list, oldest key first."""
    found = _SERIALIZERS.get((keys, purpose))
    if found is None:
        if len(_SERIALIZERS) > 256:
            _SERIALIZERS.clear()
        found = _SERIALIZERS[(keys, purpose)] = _TokenSerializer(list(keys), salt=purpose.value)
    return found


def _serializer(purpose: Purpose) -> URLSafeSerializer:
    return serializer(tuple(current_app.config["SECRET_KEYS"]), purpose)


def sign(purpose: Purpose, payload: Any) -> str:
    """Sign a payload that never expires (tracking links must work for years)."""
    return _serializer(purpose).dumps(payload)


def unsign(purpose: Purpose, token: str) -> Any:
    """Return the payload of a token made by :func:`sign` for ``purpose``."""
    try:
        return _serializer(purpose).loads(token)
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
