"""Second factor: authenticator apps (TOTP, RFC 6238), recovery codes and the half-done login.

- **Enrolment.** :func:`begin_enrolment` keeps a fresh base32 secret in a ``totp_credentials``
  row without ``confirmed_at``; it protects nothing until :func:`confirm_enrolment` receives a
  valid code for it. Confirming ends every other session of the user (they were opened with the
  password alone) and returns ten recovery codes, shown once; only their argon2 hashes are kept.
- **Login.** After the right password a user with a confirmed credential gets a
  ``login_challenges`` row, named by a random id in the cookie (its SHA-256 in the row), never a
  client-signed user id. :func:`complete_login` takes a TOTP code or a recovery code under the
  login throttle (a wrong code counts as a failed password), at most ``MAX_CHALLENGE_FAILURES``
  per challenge, and within ``LOGIN_CHALLENGE_SECONDS``.
- **Codes are accepted once.** A code is valid for its 30-second step and one step either side
  (clock drift); the step of the last accepted code is stored and a code of that step or an
  earlier one is refused, by a conditional UPDATE so that two concurrent requests cannot both
  pass. A recovery code is spent by a conditional UPDATE as well.
- **Using a recovery code** means the authenticator is lost: every other session of the user
  ends, and the Sessions page marks the session it opened.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import delete, func, select, update

from accounts.audit import record_for_user, record_security_event
from accounts.models import (
    LoginChallenge,
    Passkey,
    RecoveryCode,
    RevokeReason,
    SecurityEventKind,
    TotpCredential,
    User,
)
from core import db
from core.db import utcnow
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from privacy.policy import reduce_ip

#: How many recovery codes a user gets at enrolment and on regeneration.
RECOVERY_CODE_COUNT = 10
#: Wrong codes on one half-done login before it is dropped (the password must be entered again).
MAX_CHALLENGE_FAILURES = 5
#: Steps either side of the current one that are accepted (RFC 6238 section 5.2).
VALID_WINDOW = 1
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or typed from paper
# Recovery codes carry 10 random characters of a 31-letter alphabet (~49 bits): argon2id with
# the OWASP minimum profile keeps brute force of a stolen hash out of reach while checking ten
# of them on a login stays quick. Passwords keep argon2-cffi's heavier default profile.
RECOVERY_CODE_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
#: What hashes and checks recovery codes (the tests swap in a light profile).
_code_hasher = RECOVERY_CODE_HASHER


class SecondFactor:
    """How a half-done login was completed."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery-code"
    PASSKEY = "passkey"


# --- Enrolment ---------------------------------------------------------------------------------


def _credential(user_id: int) -> TotpCredential | None:
    return db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == user_id))


def is_enabled(user_id: int) -> bool:
    """Whether the user has a confirmed authenticator (so logins ask for a code)."""
    return (
        db.session.scalar(
            select(TotpCredential.id).where(
                TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
            )
        )
        is not None
    )


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text, the otpauth URI as an inline SVG."""

    secret: str
    uri: str
    qr_svg: str


def begin_enrolment(user_id: int) -> Enrolment:
    """The pending enrolment of the user, made if there is none (a reload shows the same
    secret). Raises ValidationError when an authenticator is already active. Commits."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError("user")
    found = _credential(user_id)
    if found is not None and found.confirmed_at is not None:
        raise ValidationError("Two-factor authentication is already on.")
    if found is None:
        found = TotpCredential(user_id=user_id, secret_base32=pyotp.random_base32(32))
        db.session.add(found)
        db.session.commit()
    uri = pyotp.TOTP(found.secret_base32).provisioning_uri(
        name=user.email, issuer_name=str(current_app.config["TOTP_ISSUER"])
    )
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, dark="#111", light="#fff", title="QR code for your authenticator app"
    )
    return Enrolment(secret=found.secret_base32, uri=uri, qr_svg=svg)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code equals ``code`` (current step +/- VALID_WINDOW), or None."""
    code = re.sub(r"\s+", "", code)
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step + offset), code):
            return step + offset
    return None


def _now() -> datetime:
    # pyotp reads naive datetimes as local time; hand it an aware UTC one.
    from datetime import UTC

    return utcnow().replace(tzinfo=UTC)


def _accept_code(credential: TotpCredential, code: str) -> bool:
    """Accept ``code`` for the credential once: its step must be newer than the last accepted
    one. The step is recorded by a conditional UPDATE (a concurrent replay loses). No commit."""
    step = _matching_step(credential.secret_base32, code, _now())
    if step is None:
        return False
    result = db.session.execute(
        update(TotpCredential)
        .where(TotpCredential.id == credential.id, TotpCredential.last_used_step < step)
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def confirm_enrolment(user_id: int, code: str, keep_session_id: int | None) -> list[str]:
    """Turn the pending authenticator on with a first valid code; returns the recovery codes
    (shown once). Ends every other session of the user (opened with the password alone).
    Raises ValidationError on a wrong code or without a pending enrolment. Commits."""
    from accounts import sessions

    found = _credential(user_id)
    if found is None:
        raise ValidationError("Start the set-up again.", field="code")
    if found.confirmed_at is not None:
        raise ValidationError("Two-factor authentication is already on.", field="code")
    if not _accept_code(found, code):
        db.session.rollback()
        raise ValidationError(
            "That code is not right. Check the time on your phone and enter the newest code.",
            field="code",
        )
    found.confirmed_at = utcnow()
    codes = _replace_recovery_codes(user_id)
    record_for_user(user_id, user_id, SecurityEventKind.TWO_FACTOR_ENABLED)
    sessions.revoke_user(
        user_id, RevokeReason.TWO_FACTOR_ENABLED, keep_session_id=keep_session_id, commit=False
    )
    db.session.commit()
    return codes


def disable(user_id: int, password: str) -> None:
    """Turn the second factor off after checking the password: the authenticator, the
    passkeys, the recovery codes and any half-done login of the user are deleted.
    ValidationError on a wrong password. Commits."""
    from accounts.services import verify_password

    if not verify_password(user_id, password):
        raise ValidationError("That is not your password.", field="password")
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.session.execute(delete(Passkey).where(Passkey.user_id == user_id))
    drop_challenges(user_id)
    record_for_user(user_id, user_id, SecurityEventKind.TWO_FACTOR_DISABLED)
    db.session.commit()


def cancel_enrolment(user_id: int) -> None:
    """Forget a pending (unconfirmed) enrolment; an active authenticator is kept. Commits."""
    db.session.execute(
        delete(TotpCredential).where(
            TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_(None)
        )
    )
    db.session.commit()


# --- Recovery codes ----------------------------------------------------------------------------


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normalise_code(code: str) -> str:
    cleaned = re.sub(r"[\s-]+", "", code.strip().lower())
    return f"{cleaned[:5]}-{cleaned[5:]}" if len(cleaned) == 10 else cleaned


def _replace_recovery_codes(user_id: int) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(
        RecoveryCode(user_id=user_id, code_hash=_code_hasher.hash(code)) for code in codes
    )
    return codes


def regenerate_recovery_codes(user_id: int, password: str) -> list[str]:
    """Replace every recovery code (used or not) by ten new ones, returned to be shown once.
    Needs the password and an active authenticator (ValidationError otherwise). Commits."""
    from accounts.services import verify_password

    if not is_enabled(user_id):
        raise ValidationError("Turn on two-factor authentication first.")
    if not verify_password(user_id, password):
        raise ValidationError("That is not your password.", field="password")
    codes = _replace_recovery_codes(user_id)
    record_for_user(user_id, user_id, SecurityEventKind.RECOVERY_CODES_REGENERATED)
    db.session.commit()
    return codes


def _spend_recovery_code(user_id: int, code: str) -> RecoveryCode | None:
    """Mark the matching unused recovery code used (conditional UPDATE); None if none. No commit."""
    code = _normalise_code(code)
    if not re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", code):
        return None
    unused = db.session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    ).all()
    for row in unused:
        try:
            _code_hasher.verify(row.code_hash, code)
        except (VerificationError, InvalidHashError):
            continue
        result = db.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return row if int(result.rowcount or 0) == 1 else None  # type: ignore[attr-defined]
    return None


def recovery_codes_left(user_id: int) -> int:
    """How many unused recovery codes the user has."""
    return int(
        db.session.scalar(
            select(func.count()).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


# --- The half-done login ---------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_challenge(user_id: int, account_id: int) -> str:
    """Record that the user gave the right password and must now give a code; returns the
    token for the cookie (the row keeps its hash). Commits."""
    token = secrets.token_urlsafe(32)
    db.session.add(LoginChallenge(token_hash=_hash(token), user_id=user_id, account_id=account_id))
    db.session.commit()
    return token


def _lifetime() -> timedelta:
    return timedelta(seconds=int(current_app.config["LOGIN_CHALLENGE_SECONDS"]))


def find_challenge(token: object) -> LoginChallenge | None:
    """The live half-done login the token names, or None (unknown, used, expired)."""
    if not isinstance(token, str) or not token or len(token) > 128:
        return None
    found = db.session.scalar(
        select(LoginChallenge).where(LoginChallenge.token_hash == _hash(token))
    )
    if found is None or found.created_at + _lifetime() <= utcnow():
        return None
    return found


def drop_challenges(user_id: int) -> None:
    """Delete every half-done login of the user (password change or reset, 2FA turned off).
    No commit."""
    db.session.execute(
        delete(LoginChallenge)
        .where(LoginChallenge.user_id == user_id)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class CodeResult:
    """What a code gave on a half-done login."""

    #: The session token for the cookie when the login is complete.
    session_token: str | None = None
    #: How it was completed (:class:`SecondFactor`), when it was.
    factor: str | None = None
    #: Seconds to wait (throttled); the code was not checked.
    retry_after: int = 0
    locked: bool = False
    #: The half-done login is gone (too many wrong codes): start again with the password.
    restart: bool = False
    #: Sessions ended because a recovery code was used.
    ended_sessions: int = 0
    recovery_codes_left: int = 0


def complete_login(
    challenge: LoginChallenge,
    code: str,
    raw_ip: str | None,
    user_agent: str | None,
    passkey: dict[str, Any] | None = None,
) -> CodeResult:
    """Check a TOTP or recovery code (or, given ``passkey``, a WebAuthn assertion) for a
    half-done login under the login throttle. A right one deletes the challenge and opens a
    session (after a recovery code: every other session of the user ends). A wrong one counts
    as a failed login for the address and the network; the ``MAX_CHALLENGE_FAILURES``-th
    drops the challenge. Commits."""
    from accounts import sessions, tasks, throttle
    from core import queue

    user = db.session.get(User, challenge.user_id)
    credential = _credential(challenge.user_id)
    if user is None or credential is None or credential.confirmed_at is None:
        db.session.delete(challenge)
        db.session.commit()
        return CodeResult(restart=True)
    verdict = throttle.check(user.email, raw_ip)
    if not verdict.allowed:
        return CodeResult(retry_after=verdict.retry_after, locked=verdict.locked)
    factor: str | None = None
    spent: RecoveryCode | None = None
    if passkey is not None:
        from accounts import passkeys

        if passkeys.verify_assertion(challenge, passkey):
            factor = SecondFactor.PASSKEY
    elif _accept_code(credential, code):
        factor = SecondFactor.TOTP
    else:
        spent = _spend_recovery_code(user.id, code)
        if spent is not None:
            factor = SecondFactor.RECOVERY_CODE
    if factor is None:
        challenge.failures += 1
        restart = challenge.failures >= MAX_CHALLENGE_FAILURES
        if restart:
            db.session.delete(challenge)
        about = {"network": reduce_ip(raw_ip), "member": user.email}
        record_for_user(user.id, None, SecurityEventKind.SECOND_FACTOR_FAILED, about)
        if throttle.record_failure(user.email, raw_ip):
            record_for_user(user.id, None, SecurityEventKind.LOCKOUT, about)
            queue.enqueue_after_commit(tasks.send_lockout_notice, user.id)
        db.session.commit()
        return CodeResult(restart=restart)
    user_id, account_id = challenge.user_id, challenge.account_id
    db.session.delete(challenge)
    ended = 0
    if factor == SecondFactor.RECOVERY_CODE:
        ended = sessions.revoke_user(user_id, RevokeReason.RECOVERY_CODE_USED, commit=False)
        record_for_user(user_id, user_id, SecurityEventKind.RECOVERY_CODE_USED)
    record_security_event(
        account_id,
        user_id,
        SecurityEventKind.LOGIN,
        {"network": reduce_ip(raw_ip), "second factor": str(factor)},
    )
    db.session.commit()
    throttle.forget_address(user.email)
    token = sessions.start(user_id, account_id, raw_ip, user_agent)
    if spent is not None:
        session_id = sessions.session_id(token)
        db.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.id == spent.id)
            .values(used_session_id=session_id)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return CodeResult(
        session_token=token,
        factor=factor,
        ended_sessions=ended,
        recovery_codes_left=recovery_codes_left(user_id),
    )


def purge_challenges(now: datetime) -> int:
    """Periodic: delete half-done logins older than ``LOGIN_CHALLENGE_SECONDS``. Commits."""
    result = db.session.execute(
        delete(LoginChallenge)
        .where(LoginChallenge.created_at <= now - _lifetime())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- Account setting ---------------------------------------------------------------------------


def set_required(account_id: int, actor_user_id: int, actor_role: str, required: bool) -> bool:
    """Require (or stop requiring) a second factor of every member of the account; returns
    whether it changed. Owners only (PermissionDeniedError); turning it on needs the owner's
    own second factor first (ValidationError), so nobody locks out the person who set it.
    Members without one are sent to enrolment from their next request on. Commits."""
    from accounts.models import Account

    if actor_role != "owner":
        raise PermissionDeniedError("Only an owner can change this.")
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    if required and not is_enabled(actor_user_id):
        raise ValidationError(
            "Turn on two-factor authentication for yourself first (Your login > Two-factor).",
            field="require_two_factor",
        )
    changed = account.require_two_factor != required
    account.require_two_factor = required
    if changed:
        record_security_event(
            account_id,
            actor_user_id,
            SecurityEventKind.TWO_FACTOR_REQUIREMENT_CHANGED,
            {"required": required},
        )
    db.session.commit()
    return changed
