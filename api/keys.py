"""API keys: made (the secret shown once), listed, revoked, and turned back into a caller.

A key reads ``envoy_<prefix>_<secret>``: the prefix (shown in Settings) finds the row, the
SHA-256 of the whole key is compared in constant time (the secret is 256 random bits, so a
plain hash is enough; nothing to stretch). A key acts with its scopes, cut down to what its
creator holds at the time of the request: a key never does more than the member who made it
could, and stops when that member leaves the account or the key is revoked (from the next
request on, nothing is cached).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from accounts.audit import record_security_event
from accounts.models import SecurityEventKind
from accounts.queries import load_member
from api.models import ApiKey
from core import db
from core.auth import ApiCaller
from core.db import utcnow
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.permissions import Permission

KEY_PREFIX = "envoy_"
#: The shown prefix: ``envoy_`` and 8 hex digits.
PREFIX_LENGTH = len(KEY_PREFIX) + 8
#: ``last_used_at`` is written at most once per this interval per key (one UPDATE a minute).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``secret`` is the whole key, shown once and never again."""

    key: ApiKey
    secret: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(
    account_id: int,
    actor_user_id: int,
    actor_permissions: frozenset[Permission],
    name: str,
    scopes: Iterable[str],
) -> NewKey:
    """Make a key named ``name`` with ``scopes`` (permission values the actor holds; at least
    one). Recorded in the security log. Commits."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the key a name, e.g. the system that will use it.", "name")
    if len(name) > 100:
        raise ValidationError("A key's name is at most 100 characters.", "name")
    try:
        chosen = frozenset(Permission(scope) for scope in scopes)
    except ValueError as exc:
        raise ValidationError("Unknown scope.", "scopes") from exc
    if not chosen:
        raise ValidationError("Choose at least one scope.", "scopes")
    beyond = chosen - actor_permissions
    if beyond:
        labels = ", ".join(sorted(permission.label for permission in beyond))
        raise PermissionDeniedError(f"A key cannot hold permissions you do not hold: {labels}.")
    prefix = KEY_PREFIX + secrets.token_hex(4)
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        account_id=account_id,
        name=name,
        prefix=prefix,
        secret_hash=_hash(token),
        scopes=sorted(permission.value for permission in chosen),
        created_by=actor_user_id,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.API_KEY_CREATED,
        {"key_id": key.id, "name": name, "prefix": prefix, "scopes": key.scopes},
    )
    db.session.commit()
    return NewKey(key, token)


def account_keys(account_id: int) -> list[ApiKey]:
    """The account's keys, live ones first, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.account_id == account_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
        )
    )


def revoke_key(account_id: int, actor_user_id: int, key_id: int) -> ApiKey:
    """Revoke the account's key: it is refused from the next request on. Idempotent (a revoked
    key stays revoked, logged once). Commits."""
    key = db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id)
    )
    if key is None:
        raise NotFoundError("api key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record_security_event(
            account_id,
            actor_user_id,
            SecurityEventKind.API_KEY_REVOKED,
            {"key_id": key.id, "name": key.name, "prefix": key.prefix},
        )
        db.session.commit()
    return key


def authenticate(token: str) -> ApiCaller | None:
    """The caller a bearer token stands for, or None: malformed, unknown, revoked, or made by
    someone no longer in the account. Scopes are those of the key that the creator still
    holds. Writes ``last_used_at`` at most once a minute (one conditional UPDATE)."""
    prefix = token[:PREFIX_LENGTH]
    if not prefix.startswith(KEY_PREFIX) or token[PREFIX_LENGTH : PREFIX_LENGTH + 1] != "_":
        return None
    if len(token) > 200:
        return None
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(token)):
        return None
    if key.revoked_at is not None or key.created_by is None:
        return None
    creator = load_member(key.created_by, key.account_id)
    if creator is None:
        return None
    now = utcnow()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        db.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                or_(
                    ApiKey.last_used_at.is_(None),
                    ApiKey.last_used_at < now - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
        )
        db.session.commit()
    scopes = frozenset(Permission(scope) for scope in key.scopes) & creator.permissions
    return ApiCaller(
        key_id=key.id,
        account_id=key.account_id,
        scopes=scopes,
        created_by=key.created_by,
        deletion_pending=creator.deletion_pending,
    )
