"""Secrets at rest: columns encrypted with keys from the environment, with rotation.

``ENCRYPTION_KEYS`` holds comma-separated Fernet keys (``cryptography``'s ``MultiFernet``): the
first one encrypts, every one decrypts, so a new key is put first, ``flask rotate-secrets``
re-encrypts every stored secret with it, and the old key can then be removed. On the embedded
default (no ``ENCRYPTION_KEYS``) a key is generated once into the data directory (mode 0600).

A column declared with :class:`EncryptedText` is encrypted on write and decrypted on read, so
callers see the clear value and the database never holds it. Every such column is found from
the models' metadata by :func:`encrypted_columns`, so rotation and the start-up key check cover
a new column without any other change: ``secret: Mapped[str] = mapped_column(EncryptedText)``.

A key that cannot decrypt what the database holds stops the app at start
(:func:`check_keys`), with a message naming the setting, rather than a 500 on the first page
that reads a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app, has_app_context
from sqlalchemy import Connection, Engine, MetaData, Text, bindparam, column, select, table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

#: Every Fernet token starts with these characters (version byte 0x80, base64url).
TOKEN_PREFIX = "gAAAAA"  # noqa: S105 - not a secret


class SecretsKeyError(RuntimeError):
    """``ENCRYPTION_KEYS`` is malformed or cannot decrypt the stored secrets; ``str()`` says how
    to fix it (never quoting a key or a secret)."""


def parse_keys(raw: str | Iterable[str]) -> list[str]:
    """The keys of a ``ENCRYPTION_KEYS`` value (comma-separated, or a list), blanks dropped."""
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    return [p.strip() for p in parts if p and p.strip()]


def make_fernet(keys: list[str]) -> MultiFernet:
    """The MultiFernet of ``keys`` (first encrypts, all decrypt); SecretsKeyError when one is
    not a Fernet key (32 bytes, url-safe base64)."""
    if not keys:
        raise SecretsKeyError(
            "ENCRYPTION_KEYS is empty: set it to one or more Fernet keys separated by commas "
            "(see docs/readme/security.md)."
        )
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as exc:
            raise SecretsKeyError(
                f"ENCRYPTION_KEYS: key {position} of {len(keys)} is not a Fernet key (32 bytes, "
                'url-safe base64). Generate one with: python -c "from cryptography.fernet '
                'import Fernet; print(Fernet.generate_key().decode())"'
            ) from exc
    return MultiFernet(fernets)


def generate_key() -> str:
    """A new Fernet key, as text."""
    return Fernet.generate_key().decode()


_fallback: MultiFernet | None = None


def init_app(app: Flask) -> None:
    """Build the app's MultiFernet from ``ENCRYPTION_KEYS`` (SecretsKeyError when malformed)."""
    global _fallback
    fernet = make_fernet(list(app.config["ENCRYPTION_KEYS"]))
    app.extensions["secrets_fernet"] = fernet
    # Outside an app context (a script using the models), the last app's keys apply.
    _fallback = fernet


def fernet() -> MultiFernet:
    """The keys of the current app (or of the last app built, outside an app context)."""
    if has_app_context():
        found: MultiFernet | None = current_app.extensions.get("secrets_fernet")
        if found is not None:
            return found
    if _fallback is None:
        raise SecretsKeyError("no ENCRYPTION_KEYS configured: build the app first")
    return _fallback


def is_token(value: str) -> bool:
    """True when ``value`` looks like a Fernet token rather than a clear-text secret."""
    return value.startswith(TOKEN_PREFIX)


class EncryptedText(TypeDecorator[str]):
    """Text stored encrypted with ``ENCRYPTION_KEYS``; read back as the clear text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return fernet().encrypt(value.encode()).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken as exc:
            raise SecretsKeyError(_cannot_decrypt()) from exc


def _cannot_decrypt(where: str = "a stored secret") -> str:
    return (
        f"ENCRYPTION_KEYS cannot decrypt {where}: the key that encrypted it is missing. Put that "
        "key back in ENCRYPTION_KEYS (comma-separated, the new key first), or on the embedded "
        "default restore the encryption_key file of the data directory."
    )


def encrypted_columns(metadata: MetaData) -> Iterator[tuple[str, str]]:
    """(table, column) of every :class:`EncryptedText` column of ``metadata``."""
    for tbl in metadata.sorted_tables:
        for col in tbl.columns:
            if isinstance(col.type, EncryptedText):
                yield tbl.name, col.name


def reencrypt_column(
    connection: Connection, table_name: str, column_name: str, keys: MultiFernet
) -> int:
    """Encrypt every value of one column with the first key: clear text is encrypted, tokens
    of any key are rotated. Returns how many rows were written. Ids and raw text only (no model
    classes), so migrations can use it. SecretsKeyError when a token matches no key."""
    tbl = table(table_name, column("id"), column(column_name))
    rows = connection.execute(
        select(tbl.c.id, tbl.c[column_name]).where(tbl.c[column_name].is_not(None))
    ).all()
    update = (
        tbl.update().where(tbl.c.id == bindparam("row_id")).values({column_name: bindparam("v")})
    )
    written = []
    for row_id, raw in rows:
        if is_token(raw):
            try:
                value = keys.rotate(raw.encode()).decode()
            except InvalidToken as exc:
                raise SecretsKeyError(_cannot_decrypt(f"{table_name}.{column_name}")) from exc
        else:
            value = keys.encrypt(raw.encode()).decode()
        written.append({"row_id": row_id, "v": value})
    if written:
        connection.execute(update, written)
    return len(written)


def rotate_all(engine: Engine, metadata: MetaData, keys: MultiFernet) -> dict[str, int]:
    """Re-encrypt every encrypted column with the first key, in one transaction; returns the
    rows written per ``table.column``. Nothing is written when any value fails to decrypt."""
    done = {}
    with engine.begin() as connection:
        for table_name, column_name in encrypted_columns(metadata):
            done[f"{table_name}.{column_name}"] = reencrypt_column(
                connection, table_name, column_name, keys
            )
    return done


def check_keys(engine: Engine, metadata: MetaData, keys: MultiFernet) -> None:
    """Raise SecretsKeyError when the keys cannot decrypt one stored value of an encrypted
    column (one row per column is tried). Tables not created yet are skipped."""
    for table_name, column_name in encrypted_columns(metadata):
        tbl = table(table_name, column(column_name))
        try:
            with engine.connect() as connection:
                raw: Any = connection.scalar(
                    select(tbl.c[column_name]).where(tbl.c[column_name].is_not(None)).limit(1)
                )
        except DBAPIError:
            continue  # not migrated yet (or the database is down: requests will say so)
        if raw is None or not is_token(raw):
            continue  # empty, or clear text the migration has not encrypted yet
        try:
            keys.decrypt(raw.encode())
        except InvalidToken as exc:
            raise SecretsKeyError(_cannot_decrypt(f"{table_name}.{column_name}")) from exc
