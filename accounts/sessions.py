"""Server-side sessions: every write about who is signed in where.

The Flask cookie (signed) carries only a random 256-bit session id. Its SHA-256 names a
``user_sessions`` row, which binds the browser to one user in one account. Every request loads
that row; a revoked, idle, too old or missing row means logged out, so ending a session takes
effect at once, and an id reused by the database can never revive an old cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, delete, or_, select, update

from accounts.audit import record_for_user
from accounts.models import RevokeReason, SecurityEventKind, UserSession
from accounts.queries import load_member
from core import db
from core.auth import CurrentMember
from core.db import utcnow
from privacy import policy

#: Seconds between two writes of ``last_seen_at`` (not one write per request).
TOUCH_INTERVAL = 60


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=int(current_app.config[name]))


def start(user_id: int, account_id: int, raw_ip: str | None, user_agent: str | None) -> str:
    """Open a session for the user in the account; returns the token for the cookie (never
    stored: the row keeps its hash). Only the device class and the network prefix are kept."""
    token = secrets.token_urlsafe(32)
    reduced = policy.minimise(raw_ip, user_agent)
    now = utcnow()
    db.session.add(
        UserSession(
            token_hash=_hash(token),
            user_id=user_id,
            account_id=account_id,
            created_at=now,
            last_seen_at=now,
            ua_class=reduced.ua_class,
            ip_prefix=reduced.ip_prefix,
        )
    )
    db.session.commit()
    return token


def session_id(token: str) -> int | None:
    """The id of the session row the token names (live or not), or None."""
    return db.session.scalar(select(UserSession.id).where(UserSession.token_hash == _hash(token)))


def resolve(token: str) -> UserSession | None:
    """The live session the token names, or None when it is unknown, revoked, idle longer
    than ``SESSION_IDLE_TIMEOUT`` or older than ``SESSION_MAX_AGE``. Records the visit at most
    once per :data:`TOUCH_INTERVAL`."""
    if not token or len(token) > 128:
        return None
    found = db.session.scalar(select(UserSession).where(UserSession.token_hash == _hash(token)))
    now = utcnow()
    if (
        found is None
        or found.revoked_at is not None
        or found.last_seen_at + _seconds("SESSION_IDLE_TIMEOUT") <= now
        or found.created_at + _seconds("SESSION_MAX_AGE") <= now
    ):
        return None
    if now - found.last_seen_at >= timedelta(seconds=TOUCH_INTERVAL):
        found.last_seen_at = now
        db.session.commit()
    return found


def _revoke(condition: ColumnElement[bool], reason: RevokeReason) -> int:
    """Mark the live sessions matching ``condition`` revoked; returns how many (expired ones
    are already logged out and are neither touched nor counted)."""
    now = utcnow()
    result = db.session.execute(
        update(UserSession)
        .where(
            condition,
            UserSession.revoked_at.is_(None),
            UserSession.last_seen_at > now - _seconds("SESSION_IDLE_TIMEOUT"),
            UserSession.created_at > now - _seconds("SESSION_MAX_AGE"),
        )
        .values(revoked_at=now, revoked_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end(session_id: int, reason: RevokeReason = RevokeReason.LOGOUT) -> None:
    """End one session (logout). Commits."""
    _revoke(UserSession.id == session_id, reason)
    db.session.commit()


def revoke_one(user_id: int, session_id: int) -> bool:
    """End one of the user's own sessions (Sessions page). False when it is not theirs or
    already ended. Recorded in the security log of the user's accounts. Commits."""
    count = _revoke(
        (UserSession.id == session_id) & (UserSession.user_id == user_id), RevokeReason.REVOKED
    )
    if count:
        record_for_user(user_id, user_id, SecurityEventKind.SESSIONS_REVOKED, {"sessions": count})
    db.session.commit()
    return count == 1


def revoke_user(
    user_id: int, reason: RevokeReason, keep_session_id: int | None = None, *, commit: bool = True
) -> int:
    """End every session of the user (but ``keep_session_id``) and drop their half-done
    logins (a password given before a change must not complete one); returns how many
    sessions ended. The person's own "log out everywhere" (``REVOKED``) is recorded in the
    security log of their accounts (other reasons are recorded by the change that caused
    them)."""
    from accounts.twofactor import drop_challenges

    drop_challenges(user_id)
    condition = UserSession.user_id == user_id
    if keep_session_id is not None:
        condition = condition & (UserSession.id != keep_session_id)
    count = _revoke(condition, reason)
    if reason is RevokeReason.REVOKED:
        record_for_user(
            user_id,
            user_id,
            SecurityEventKind.SESSIONS_REVOKED,
            {"sessions": count, "everywhere": True},
        )
    if commit:
        db.session.commit()
    return count


def revoke_membership(user_id: int, account_id: int, reason: RevokeReason) -> int:
    """End the user's sessions bound to the account (removal from it). No commit."""
    return _revoke(
        (UserSession.user_id == user_id) & (UserSession.account_id == account_id), reason
    )


def revoke_account(account_id: int, reason: RevokeReason) -> int:
    """End every session bound to the account, whoever's. No commit."""
    return _revoke(UserSession.account_id == account_id, reason)


#: Days an ended session stays listed (as evidence of what happened) before it is deleted.
KEEP_ENDED_DAYS = 30


def purge_ended(now: datetime) -> int:
    """Periodic: delete sessions that ended or expired more than :data:`KEEP_ENDED_DAYS` ago,
    and half-done logins (second factor awaited) that expired. Commits."""
    cutoff = now - timedelta(days=KEEP_ENDED_DAYS)
    result = db.session.execute(
        delete(UserSession)
        .where(
            or_(
                UserSession.revoked_at < cutoff,
                UserSession.last_seen_at < cutoff - _seconds("SESSION_IDLE_TIMEOUT"),
                UserSession.created_at < cutoff - _seconds("SESSION_MAX_AGE"),
            )
        )
        .execution_options(synchronize_session=False)
    )
    from accounts.twofactor import purge_challenges

    purge_challenges(now)  # commits
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def load_current_member(token: str) -> CurrentMember | None:
    """The member signed in with this session token (:func:`resolve`, then the membership as
    it is now), or None. Installed as core.auth's member loader by accounts.views."""
    found = resolve(token)
    if found is None:
        return None
    return load_member(found.user_id, found.account_id, session_id=found.id)
