"""Keyed hashes computed inside PostgreSQL, equal to Python's ``hmac.new(key, m, sha256)``.

PostgreSQL (11 and later) has ``sha256(bytea)`` built in but no HMAC without the pgcrypto
extension. HMAC is two nested hashes over the key padded to the block size (RFC 2104), so with
the inner and outer padded keys computed here and bound as parameters, core ``sha256`` is
enough. Used to count rows against tables that hold keyed hashes (suppressions, the engine)
in one statement, instead of hashing every row in Python.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import ColumnElement, LargeBinary, SQLColumnExpression, String, func, literal

_BLOCK = 64  # SHA-256 block size in bytes


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256_hex(key: bytes, message: ColumnElement[bytes]) -> ColumnElement[str]:
    """A PostgreSQL expression whose value is ``hmac.new(key, message, sha256).hexdigest()``
    for the ``bytea`` expression ``message``. PostgreSQL only."""
    inner_key, outer_key = _padded_keys(key)
    inner = func.sha256(literal(inner_key, LargeBinary).op("||")(message), type_=LargeBinary)
    outer = func.sha256(literal(outer_key, LargeBinary).op("||")(inner), type_=LargeBinary)
    return func.encode(outer, "hex", type_=String)


def utf8(text: SQLColumnExpression[str]) -> ColumnElement[bytes]:
    """The UTF-8 bytes of a text expression (PostgreSQL ``convert_to``)."""
    return func.convert_to(text, "UTF8", type_=LargeBinary)
