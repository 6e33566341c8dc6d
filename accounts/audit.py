"""The security log: one entry per security event of an account (logins, failed logins,
lockouts, password and session changes, team changes, exports, deletion, privacy settings,
data requests, breach notices).

:func:`record_security_event` is the one way to write it; other packages call it with a
:class:`~accounts.models.SecurityEventKind`. An entry names people by user id (members) and
things by id and count; a contact's address or name never goes in. Owners read it under
Settings > Security log (accounts.queries.security_log). Entries older than
``SECURITY_LOG_RETENTION_DAYS`` are deleted by the scheduler (:func:`apply_retention`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from accounts.models import Membership, SecurityEvent, SecurityEventKind
from core import db
from core.db import utcnow

#: Types a detail value may have: scalars and flat lists of them (ids, counts, names of roles).
_SCALARS = (str, int, float, bool, type(None))


def _clean(details: dict[str, Any] | None) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if isinstance(value, list | tuple):
            if not all(isinstance(item, _SCALARS) for item in value):
                raise TypeError(f"security event detail {key!r}: only flat lists")
            value = list(value)
        elif not isinstance(value, _SCALARS):
            raise TypeError(f"security event detail {key!r}: {type(value).__name__}")
        cleaned[str(key)] = value
    return cleaned


def record_security_event(
    account_id: int,
    actor_user_id: int | None,
    kind: SecurityEventKind,
    details: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Add an entry to the account's security log, in the caller's transaction (no commit:
    the entry is kept exactly when the change it records is).

    ``actor_user_id``: the member who acted (None for the platform, a scheduler or an anonymous
    visitor). ``details``: ids, counts, roles, setting values; never a contact's address or
    name. Raises TypeError for a detail that is not a scalar or a flat list of scalars."""
    event = SecurityEvent(
        account_id=account_id,
        actor_user_id=actor_user_id,
        kind=SecurityEventKind(kind).value,
        details=_clean(details),
        at=utcnow(),
    )
    db.session.add(event)
    return event


def record_for_user(
    user_id: int,
    actor_user_id: int | None,
    kind: SecurityEventKind,
    details: dict[str, Any] | None = None,
) -> int:
    """Record an event about a user (a failed login, a lockout, a password change) in the
    log of every account the user is a member of; returns how many. No commit."""
    account_ids = list(
        db.session.scalars(
            select(Membership.account_id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.account_id)
        )
    )
    for account_id in account_ids:
        record_security_event(account_id, actor_user_id, kind, details)
    return len(account_ids)


def apply_retention(now: datetime) -> int:
    """Periodic: delete entries older than ``SECURITY_LOG_RETENTION_DAYS``. Idempotent.
    Commits; returns how many were deleted."""
    cutoff = now - timedelta(days=int(current_app.config["SECURITY_LOG_RETENTION_DAYS"]))
    result = db.session.execute(
        delete(SecurityEvent)
        .where(SecurityEvent.at < cutoff)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


#: How each kind is named on the Security log page (and in its filter).
KIND_LABELS: dict[str, str] = {
    SecurityEventKind.LOGIN: "Login",
    SecurityEventKind.LOGIN_FAILED: "Failed login",
    SecurityEventKind.LOCKOUT: "Login locked",
    SecurityEventKind.PASSWORD_CHANGED: "Password changed",
    SecurityEventKind.PASSWORD_RESET: "Password reset",
    SecurityEventKind.SESSIONS_REVOKED: "Sessions logged out",
    SecurityEventKind.ROLE_CHANGED: "Role changed",
    SecurityEventKind.MEMBER_ADDED: "Member added",
    SecurityEventKind.MEMBER_REMOVED: "Member removed",
    SecurityEventKind.CONTACTS_EXPORTED: "Contacts exported",
    SecurityEventKind.DELETION_REQUESTED: "Deletion requested",
    SecurityEventKind.DELETION_CONFIRMED: "Deletion confirmed",
    SecurityEventKind.DELETION_CANCELLED: "Deletion cancelled",
    SecurityEventKind.SETTINGS_CHANGED: "Settings changed",
    SecurityEventKind.DATA_REQUEST_FULFILLED: "Data request fulfilled",
    SecurityEventKind.BREACH_NOTICE: "Breach notice",
    SecurityEventKind.TWO_FACTOR_ENABLED: "Two-factor turned on",
    SecurityEventKind.TWO_FACTOR_DISABLED: "Two-factor turned off",
    SecurityEventKind.RECOVERY_CODES_REGENERATED: "Recovery codes renewed",
    SecurityEventKind.RECOVERY_CODE_USED: "Recovery code used",
    SecurityEventKind.SECOND_FACTOR_FAILED: "Wrong second factor",
    SecurityEventKind.TWO_FACTOR_REQUIREMENT_CHANGED: "Two-factor requirement changed",
    SecurityEventKind.PASSKEY_ADDED: "Passkey added",
    SecurityEventKind.PASSKEY_REMOVED: "Passkey removed",
    SecurityEventKind.ROLE_DEFINED: "Role defined or changed",
    SecurityEventKind.ROLE_DELETED: "Role deleted",
    SecurityEventKind.API_KEY_CREATED: "API key created",
    SecurityEventKind.API_KEY_REVOKED: "API key revoked",
}


def describe(kind: str, details: dict[str, Any]) -> str:
    """One line saying what an entry's details hold, for the Security log page."""
    d = details or {}
    network = f" from network {d['network']}" if d.get("network") else ""
    if kind in (
        SecurityEventKind.LOGIN,
        SecurityEventKind.LOGIN_FAILED,
        SecurityEventKind.LOCKOUT,
        SecurityEventKind.SECOND_FACTOR_FAILED,
    ):
        how = f" with {d['second factor']}" if d.get("second factor") else ""
        how += f" through {d['method']}" if d.get("method") else ""
        return f"{d.get('member', '')}{network}{how}".strip()
    if kind in (SecurityEventKind.ROLE_DEFINED, SecurityEventKind.ROLE_DELETED):
        changes = [f"+{p}" for p in d.get("added", [])] + [f"-{p}" for p in d.get("removed", [])]
        return f"{d.get('role')}" + (f": {', '.join(changes)}" if changes else "")
    if kind in (SecurityEventKind.API_KEY_CREATED, SecurityEventKind.API_KEY_REVOKED):
        scopes = f" with {', '.join(d['scopes'])}" if d.get("scopes") else ""
        return f"“{d.get('name')}” ({d.get('prefix')}){scopes}"
    if kind == SecurityEventKind.TWO_FACTOR_REQUIREMENT_CHANGED:
        return "required of every member" if d.get("required") else "no longer required"
    if kind == SecurityEventKind.ROLE_CHANGED:
        return f"{d.get('member')}: {d.get('from')} → {d.get('to')}"
    if kind in (SecurityEventKind.MEMBER_ADDED, SecurityEventKind.MEMBER_REMOVED):
        return f"{d.get('member')} ({d.get('role')})"
    if kind == SecurityEventKind.SESSIONS_REVOKED:
        where = "everywhere else" if d.get("everywhere") else "one session"
        return f"{where}: {d.get('sessions', 0)} ended"
    if kind == SecurityEventKind.CONTACTS_EXPORTED:
        rows = d.get("rows", 0)
        if "list_id" in d:
            what = f"list #{d['list_id']}"
        elif "segment_id" in d:
            what = f"segment #{d['segment_id']}"
        else:
            what = f"contact #{d.get('contact_id')}"
        fmt = f" as {str(d['format']).upper()}" if d.get("format") else ""
        return f"{what}{fmt}, {rows} row{'s' if rows != 1 else ''}"
    if kind == SecurityEventKind.SETTINGS_CHANGED:
        parts = [
            f"{name.replace('_', ' ')}: {d.get(name + '.from')} → {d.get(name + '.to')}"
            for name in d.get("changed", [])
        ]
        return f"{str(d.get('tab', '')).capitalize()} tab: " + "; ".join(parts)
    if kind == SecurityEventKind.DATA_REQUEST_FULFILLED:
        contact = f", contact #{d['contact_id']}" if d.get("contact_id") else ""
        return f"{d.get('request')} (request #{d.get('request_id')}{contact})"
    if kind == SecurityEventKind.DELETION_CONFIRMED:
        return f"by the emailed link; due {d.get('due', '')} UTC"
    if kind == SecurityEventKind.BREACH_NOTICE:
        step = "report of the actions taken" if d.get("step") == "report" else "notice"
        return f"incident #{d.get('incident_id')}: {step} received"
    return ""
