"""Every write and rule about accounts, users, memberships and settings."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select

from accounts.audit import record_for_user, record_security_event
from accounts.models import (
    Account,
    BuiltinRole,
    Membership,
    RevokeReason,
    SecurityEventKind,
    User,
)
from core import db, timezones
from core.db import utcnow
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.mail import send_system_mail
from core.permissions import Permission
from core.signing import BadTokenError, Purpose, sign_timed, unsign_timed
from core.urls import external_url
from subscribers.normalise import normalise_email

log = logging.getLogger(__name__)
#: argon2id at argon2-cffi's default, RFC 9106's second recommended profile (3 passes over
#: 64 MiB, 4 lanes): about 0.16 s of a core per hash or check here.
PASSWORD_HASHER = PasswordHasher()
#: What hashes and checks passwords; the tests swap in a light profile (tests/conftest.py) and
#: check this module's production one in tests/test_password_hashing.py.
_hasher = PASSWORD_HASHER


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a secret nobody knows, at ``hasher``'s profile: checked for unknown addresses,
    so they cost the same time as known ones."""
    return hasher.hash(secrets.token_urlsafe(16))


MIN_PASSWORD_LENGTH = 10
#: Who acts: the acting member's permissions (CurrentMember.permissions), or a built-in role's
#: name for scripts and tests.
Actor = frozenset[Permission] | str


def _permissions(actor: Actor) -> frozenset[Permission]:
    from accounts.roles import BUILTIN

    return BUILTIN.get(actor, frozenset()) if isinstance(actor, str) else actor


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"Use at least {MIN_PASSWORD_LENGTH} characters for the password.", field="password"
        )


def _user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


#: The inline error of a sign-up without the age confirmation.
OF_AGE_REQUIRED = "Confirm that you are of age: Envoy is not for minors."


def unusable_password_hash() -> str:
    """A password hash of a random secret nobody knows, for a user who has not chosen a
    password (an invitee, a person who joined through single sign-on): only the emailed
    reset link can give them one."""
    return _hasher.hash(secrets.token_urlsafe(32))


def sign_up(
    account_name: str,
    name: str,
    email: str,
    password: str,
    time_zone: str | None = None,
    *,
    of_age: bool,
) -> tuple[Account, User]:
    """Create an account with its first user as owner. Raises ValidationError on bad input.

    The person must confirm being of the age of majority where they live (``of_age``, privacy
    policy s.10); without it nothing is recorded. ``time_zone`` comes from the browser:
    anything but a valid IANA name (absent, forged, a zone the database lacks) gives UTC,
    silently; it can be changed under Settings.
    """
    if not of_age:
        raise ValidationError(OF_AGE_REQUIRED, field="of_age")
    account_name = account_name.strip()
    if not account_name:
        raise ValidationError("Give the organisation a name.", field="account_name")
    email = normalise_email(email)
    _check_password(password)
    if _user_by_email(email) is not None:
        raise ValidationError(
            "An account already uses this address. Log in instead.", field="email"
        )
    account = Account(name=account_name, time_zone=timezones.clean_zone(time_zone))
    user = User(email=email, name=name.strip(), password_hash=_hasher.hash(password))
    db.session.add_all([account, user])
    db.session.flush()
    db.session.add(Membership(account_id=account.id, user_id=user.id, role="owner"))
    db.session.commit()
    return account, user


def authenticate(email: str, password: str) -> tuple[User, int] | None:
    """The user and the account to enter, or None. Takes the same time for unknown addresses."""
    try:
        email = normalise_email(email)
    except ValidationError:
        return None
    user = _user_by_email(email)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(_hasher), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:  # the dummy hash matched nothing a person knows; never log in
        return None
    membership = db.session.scalar(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.id).limit(1)
    )
    if membership is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    record_activity(membership.account_id)
    db.session.commit()
    return user, membership.account_id


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt gave: a user and account, a wait (throttled), or neither."""

    user_id: int | None = None
    account_id: int | None = None
    #: Seconds to wait before the next attempt; the password was not checked.
    retry_after: int = 0
    locked: bool = False


def log_in(email: str, password: str, raw_ip: str | None) -> LoginResult:
    """Check a login under the throttle (accounts/throttle.py). Unknown and known addresses
    get the same results and the same work; the address's owner gets an email (by a job)
    when the failures lock it."""
    from accounts import tasks, throttle
    from core import queue
    from privacy.policy import reduce_ip

    verdict = throttle.check(email, raw_ip)
    if not verdict.allowed:
        return LoginResult(retry_after=verdict.retry_after, locked=verdict.locked)
    network = {"network": reduce_ip(raw_ip)}
    found = authenticate(email, password)
    if found is not None:
        from accounts import twofactor

        # With a second factor the failures are forgotten, and the login recorded, only once
        # the code is right too: otherwise the right password would reset the count between
        # rounds of guessed codes.
        if not twofactor.is_enabled(found[0].id):
            throttle.forget_address(email)
            record_security_event(found[1], found[0].id, SecurityEventKind.LOGIN, network)
        db.session.commit()
        return LoginResult(user_id=found[0].id, account_id=found[1])
    # Recorded only in the logs of the accounts the address belongs to (their owners see
    # it); the answer to the visitor is the same for unknown and known addresses.
    user_id = user_id_for_email(email)
    about = dict(network)
    if user_id is not None:
        known = db.session.get(User, user_id)
        about["member"] = known.email if known else None
        record_for_user(user_id, None, SecurityEventKind.LOGIN_FAILED, about)
    if throttle.record_failure(email, raw_ip):
        if user_id is not None:
            record_for_user(user_id, None, SecurityEventKind.LOCKOUT, about)
            queue.enqueue_after_commit(tasks.send_lockout_notice, user_id)
        log.info("login locked after repeated failures")
    db.session.commit()
    return LoginResult()


def record_activity(account_id: int) -> None:
    """Mark the account active now (login, sending). Cancels a pending inactivity deletion."""
    account = db.session.get(Account, account_id)
    if account is not None:
        account.last_activity_at = utcnow()
        account.inactivity_warning_sent_at = None


def _password_fingerprint(user: User) -> str:
    # Changes with the password, so a reset link works once.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def request_password_reset(email: str) -> None:
    """Email a reset link if the address belongs to a user; silent otherwise."""
    try:
        email = normalise_email(email)
    except ValidationError:
        return
    user = _user_by_email(email)
    if user is None:
        return
    token = sign_timed(Purpose.PASSWORD_RESET, [user.id, _password_fingerprint(user)])
    link = external_url("accounts.reset_password", token=token)
    send_system_mail(
        user.email,
        "Reset your password",
        f"Someone asked to reset the password of your account.\n\n"
        f"Choose a new password here (valid for one hour, once):\n{link}\n\n"
        f"If it was not you, ignore this message.",
    )


def user_for_reset_token(token: str) -> User:
    """The user a reset token is for; raises BadTokenError if expired, used or forged."""
    payload = unsign_timed(
        Purpose.PASSWORD_RESET, token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"]
    )
    if not isinstance(payload, list) or len(payload) != 2:
        raise BadTokenError("malformed")
    user = db.session.get(User, payload[0])
    if user is None or _password_fingerprint(user) != payload[1]:
        raise BadTokenError("used or unknown")
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password through a reset token (single use). Ends every session of the user
    and lifts a login lockout of the address."""
    from accounts import sessions, throttle

    user = user_for_reset_token(token)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    sessions.revoke_user(user.id, RevokeReason.PASSWORD_RESET, commit=False)
    record_for_user(user.id, user.id, SecurityEventKind.PASSWORD_RESET)
    db.session.commit()
    throttle.forget_address(user.email)
    return user


def verify_password(user_id: int, password: str) -> bool:
    """Whether ``password`` is the user's current password (False for an unknown user)."""
    user = db.session.get(User, user_id)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(_hasher), password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None


def change_password(user_id: int, current_password: str, new_password: str) -> User:
    """Set a new password after checking the current one, with the sign-up rules. Ends every
    session of the user; the caller opens a fresh one for the browser that asked."""
    from accounts import sessions

    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError("user")
    try:
        _hasher.verify(user.password_hash, current_password)
    except (VerificationError, InvalidHashError):
        raise ValidationError(
            "That is not your current password.", field="current_password"
        ) from None
    _check_password(new_password)
    if new_password == current_password:
        raise ValidationError("Choose a password different from the current one.", field="password")
    user.password_hash = _hasher.hash(new_password)
    sessions.revoke_user(user.id, RevokeReason.PASSWORD_CHANGED, commit=False)
    record_for_user(user.id, user.id, SecurityEventKind.PASSWORD_CHANGED)
    db.session.commit()
    return user


def send_lockout_notice(user_id: int) -> None:
    """Tell the user their login is locked after repeated failures, with a reset link."""
    user = db.session.get(User, user_id)
    if user is None:
        return
    token = sign_timed(Purpose.PASSWORD_RESET, [user.id, _password_fingerprint(user)])
    minutes = max(1, int(current_app.config["LOGIN_LOCKOUT_SECONDS"]) // 60)
    link = external_url("accounts.reset_password", token=token)
    send_system_mail(
        user.email,
        "Your Envoy login is locked for a while",
        f"Someone entered a wrong password for your account many times in a row, so logging "
        f"in with your address is blocked for {minutes} minutes.\n\n"
        f"If it was you, you can choose a new password now; that also lifts the block "
        f"(the link is valid for one hour, once):\n{link}"
        f"\n\nIf it was not you, your password held. Consider choosing a longer one.",
    )


def user_id_for_email(email: str) -> int | None:
    """The id of the user with this address, or None."""
    try:
        user = _user_by_email(normalise_email(email))
    except ValidationError:
        return None
    return user.id if user else None


def add_member(
    account_id: int,
    actor: Actor,
    email: str,
    name: str,
    role: str,
    *,
    actor_user_id: int | None = None,
) -> User:
    """Add a person to the account with ``role`` (``owner``/``admin``/``member`` or
    ``role:<id>`` of the account's own roles); a new user gets an email to set a password.
    Needs ``team:manage`` and every permission the role grants (ownership needs an owner).
    Recorded in the security log (with ``actor_user_id``)."""
    from accounts import roles

    granted = _permissions(actor)
    roles.require(granted, Permission.MANAGE_TEAM, "add members")
    column, custom = roles.resolve(account_id, role)
    if column == BuiltinRole.OWNER and Permission.OWN_ACCOUNT not in granted:
        raise PermissionDeniedError("Only an owner can add another owner.")
    roles.check_grant(granted, roles.permissions_of_choice(account_id, role))
    email = normalise_email(email)
    user = _user_by_email(email)
    is_new = user is None
    if user is None:
        # Unusable until the invitee chooses a password through the emailed link.
        user = User(email=email, name=name.strip(), password_hash=unusable_password_hash())
        db.session.add(user)
        db.session.flush()
    exists = db.session.scalar(
        select(Membership).where(Membership.account_id == account_id, Membership.user_id == user.id)
    )
    if exists is not None:
        raise ValidationError("That person is already a member.", field="email")
    db.session.add(
        Membership(
            account_id=account_id,
            user_id=user.id,
            role=column,
            role_id=custom.id if custom is not None else None,
        )
    )
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.MEMBER_ADDED,
        {"user_id": user.id, "member": user.email, "role": _role_label(column, custom)},
    )
    db.session.commit()
    if is_new:
        token = sign_timed(Purpose.PASSWORD_RESET, [user.id, _password_fingerprint(user)])
        link = external_url("accounts.reset_password", token=token)
        account = db.session.get(Account, account_id)
        send_system_mail(
            user.email,
            f"You were added to {account.name if account else 'an account'}",
            f"You now have access to {account.name if account else 'an account'}.\n\n"
            f"Choose your password here (valid for one hour):\n{link}\n",
        )
    return user


def _membership(account_id: int, user_id: int) -> Membership:
    membership = db.session.scalar(
        select(Membership).where(Membership.account_id == account_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFoundError("member")
    return membership


def _held(membership: Membership) -> frozenset[Permission]:
    from accounts import roles

    if membership.role_id is not None:
        return roles.get_role(membership.account_id, membership.role_id).permissions
    return roles.BUILTIN.get(membership.role, frozenset())


def _keep_an_owner(account_id: int) -> None:
    owners = db.session.scalar(
        select(func.count()).where(
            Membership.account_id == account_id, Membership.role == BuiltinRole.OWNER
        )
    )
    if (owners or 0) <= 1:
        raise ValidationError("An account keeps at least one owner.", field="role")


def _role_label(column: str, custom: Any) -> str:
    return str(custom.name) if custom is not None else str(column)


def change_role(
    account_id: int, actor: Actor, user_id: int, role: str, *, actor_user_id: int | None = None
) -> None:
    """Give a member another role (built-in, or ``role:<id>`` of the account's own). Needs
    ``team:manage`` and every permission of both the old and the new role, so only owners
    grant or remove ownership; one owner always stays. The member's permissions change from
    their next request on (read from the database on every request). A change is recorded in
    the security log (with ``actor_user_id``). Commits."""
    from accounts import roles

    granted = _permissions(actor)
    roles.require(granted, Permission.MANAGE_TEAM, "change roles")
    column, custom = roles.resolve(account_id, role)
    membership = _membership(account_id, user_id)
    if BuiltinRole.OWNER in (column, membership.role) and Permission.OWN_ACCOUNT not in granted:
        raise PermissionDeniedError("Only an owner can change ownership.")
    roles.check_grant(granted, _held(membership) | roles.permissions_of_choice(account_id, role))
    if membership.role == BuiltinRole.OWNER and column != BuiltinRole.OWNER:
        _keep_an_owner(account_id)
    before = _role_label(
        membership.role,
        roles.get_role(account_id, membership.role_id) if membership.role_id else None,
    )
    after = _role_label(column, custom)
    if before != after:
        record_security_event(
            account_id,
            actor_user_id,
            SecurityEventKind.ROLE_CHANGED,
            {"user_id": user_id, "member": membership.user.email, "from": before, "to": after},
        )
    membership.role = column
    membership.role_id = custom.id if custom is not None else None
    db.session.commit()


def remove_member(
    account_id: int, actor: Actor, user_id: int, *, actor_user_id: int | None = None
) -> None:
    """Remove a member (never the last owner; an owner only by an owner) and end their
    sessions in the account at once; recorded in the security log. Commits."""
    from accounts import roles

    granted = _permissions(actor)
    roles.require(granted, Permission.MANAGE_TEAM, "remove members")
    membership = _membership(account_id, user_id)
    if membership.role == BuiltinRole.OWNER:
        if Permission.OWN_ACCOUNT not in granted:
            raise PermissionDeniedError("Only an owner can remove an owner.")
        try:
            _keep_an_owner(account_id)
        except ValidationError:
            raise ValidationError("An account keeps at least one owner.") from None
    from accounts import sessions

    sessions.revoke_membership(user_id, account_id, RevokeReason.REMOVED)
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.MEMBER_REMOVED,
        {"user_id": user_id, "member": membership.user.email, "role": membership.role},
    )
    db.session.delete(membership)
    db.session.commit()


def update_general_settings(
    account_id: int, name: str, postal_address: str, time_zone: str | None = None
) -> Account:
    """Rename the account, set the postal address printed in every campaign (CAN-SPAM) and,
    when given, its time zone (an IANA name, else ValidationError on ``time_zone``)."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    if not name.strip():
        raise ValidationError("Give the organisation a name.", field="name")
    if time_zone is not None and not timezones.is_valid_zone(time_zone.strip()):
        raise ValidationError(
            "Choose a time zone from the list, e.g. Europe/Berlin or America/New_York.",
            field="time_zone",
        )
    account.name = name.strip()
    account.postal_address = postal_address.strip()
    if time_zone is not None:
        account.time_zone = time_zone.strip()
    db.session.commit()
    return account


def update_privacy_settings(
    account_id: int,
    individual_tracking: bool,
    ip_handling: str,
    event_retention_days: int,
    *,
    actor_user_id: int | None = None,
) -> Account:
    """Set how tracking treats this account's recipients. What changed (old and new values)
    is recorded in the security log."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    if ip_handling not in ("truncate", "drop"):
        raise ValidationError("Choose how IP addresses are handled.", field="ip_handling")
    if not 1 <= event_retention_days <= 3650:
        raise ValidationError("Keep events between 1 and 3650 days.", field="event_retention_days")
    _record_settings_change(
        account,
        actor_user_id,
        "privacy",
        {
            "individual_tracking": individual_tracking,
            "ip_handling": ip_handling,
            "event_retention_days": event_retention_days,
        },
    )
    account.individual_tracking = individual_tracking
    account.ip_handling = ip_handling
    account.event_retention_days = event_retention_days
    db.session.commit()
    return account


def _record_settings_change(
    account: Account, actor_user_id: int | None, tab: str, wanted: dict[str, Any]
) -> None:
    """Record in the security log which of ``wanted``'s settings change, old and new."""
    changed = [name for name, value in wanted.items() if getattr(account, name) != value]
    if changed:
        details: dict[str, Any] = {"tab": tab, "changed": changed}
        for name in changed:
            details[f"{name}.from"] = getattr(account, name)
            details[f"{name}.to"] = wanted[name]
        record_security_event(
            account.id, actor_user_id, SecurityEventKind.SETTINGS_CHANGED, details
        )


def set_engine_participation(
    account_id: int, participate: bool, *, actor_user_id: int | None = None
) -> Account:
    """Join or leave the Delivery Optimization Engine (Settings > Advanced).

    Leaving: from the commit on nothing of the account's contacts enters the engine and its
    sends get no per-address insight; one job run removes what it contributed before.
    Joining again starts from nothing. Saving the same choice again changes nothing.
    """
    from privacy import engine_gate

    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    if account.engine_participation != participate:
        _record_settings_change(
            account, actor_user_id, "advanced", {"engine_participation": participate}
        )
        account.engine_participation = participate
        engine_gate.participation_changed(account_id, participate)
    db.session.commit()
    return account


# --- Account lifecycle: deletion on request, reactivation, permanent deletion -----------------
# (privacy issue: the periodic jobs that call these live in privacy/retention.py)

ACCOUNT_DELETION_LINK_MAX_AGE = 24 * 3600


def request_account_deletion(account_id: int, user_id: int, actor: Actor) -> None:
    """Email the owner a signed link (24 h, once) that confirms the deletion of the account.
    Needs ``account:own``."""
    if Permission.OWN_ACCOUNT not in _permissions(actor):
        raise PermissionDeniedError("Only an owner can delete the account.")
    account = db.session.get(Account, account_id)
    user = db.session.get(User, user_id)
    if account is None or user is None:
        raise NotFoundError("account")
    if account.deletion_due_at is not None:
        raise ValidationError("The account is already scheduled for deletion.")
    token = sign_timed(Purpose.ACCOUNT_DELETION, [account.id, user.id])
    link = external_url("accounts.confirm_deletion", token=token)
    grace = int(current_app.config["ACCOUNT_DELETION_GRACE_DAYS"])
    from privacy.services import record_lifecycle

    record_lifecycle("deletion-requested", account.id, f"member:{user.id}")
    record_security_event(account.id, user.id, SecurityEventKind.DELETION_REQUESTED)
    db.session.commit()
    send_system_mail(
        user.email,
        f"Confirm the deletion of {account.name}",
        f"You asked to delete the account {account.name}.\n\n"
        f"Confirm it here (valid for 24 hours, once):\n{link}\n\n"
        f"The account is then deleted {grace} days later, with its members, contacts, "
        f"campaigns and events. Until then any owner can log in and reactivate it.\n\n"
        "If it was not you, ignore this message and consider changing your password.",
    )


def account_for_deletion_token(token: str) -> Account:
    """The account a deletion link is for (no state change). BadTokenError if it is forged,
    expired, made for another purpose, or the account is already scheduled."""
    payload = unsign_timed(Purpose.ACCOUNT_DELETION, token, max_age=ACCOUNT_DELETION_LINK_MAX_AGE)
    if not isinstance(payload, list) or len(payload) != 2:
        raise BadTokenError("malformed")
    account = db.session.get(Account, payload[0])
    member = db.session.scalar(
        select(Membership).where(
            Membership.account_id == payload[0],
            Membership.user_id == payload[1],
            Membership.role == "owner",
        )
    )
    if account is None or member is None or account.deletion_due_at is not None:
        raise BadTokenError("unknown or already scheduled")
    return account


def confirm_account_deletion(token: str) -> Account:
    """Schedule the deletion ``ACCOUNT_DELETION_GRACE_DAYS`` from now. The link works once."""
    from datetime import timedelta

    from privacy.services import record_lifecycle, spend_token

    account = account_for_deletion_token(token)
    spend_token(Purpose.ACCOUNT_DELETION, token, ACCOUNT_DELETION_LINK_MAX_AGE)
    now = utcnow()
    account.deletion_requested_at = now
    account.deletion_due_at = now + timedelta(
        days=int(current_app.config["ACCOUNT_DELETION_GRACE_DAYS"])
    )
    record_lifecycle(
        "deletion-confirmed",
        account.id,
        "owner (emailed link)",
        detail=f"due {account.deletion_due_at:%Y-%m-%d %H:%M} UTC",
    )
    record_security_event(
        account.id,
        None,
        SecurityEventKind.DELETION_CONFIRMED,
        {"due": f"{account.deletion_due_at:%Y-%m-%dT%H:%M}"},
    )
    from accounts import sessions

    # Everyone in the account is logged out; a new login leads only to reactivation.
    sessions.revoke_account(account.id, RevokeReason.ACCOUNT_DELETION)
    db.session.commit()
    from accounts.queries import owner_emails

    due_day = timezones.format_datetime(account.deletion_due_at, account.time_zone, date_only=True)
    due_at = timezones.format_datetime(account.deletion_due_at, account.time_zone)
    for owner in owner_emails(account.id):
        send_system_mail(
            owner,
            f"{account.name} will be deleted on {due_day}",
            f"The account {account.name} is scheduled for deletion on "
            f"{due_at}. Until then, log in and press "
            f"Reactivate to keep it:\n{external_url('accounts.login')}",
        )
    return account


def reactivate_account(account_id: int, user_id: int, actor: Actor) -> Account:
    """Cancel a scheduled deletion (``account:own``, until the deletion is due). Commits."""
    if Permission.OWN_ACCOUNT not in _permissions(actor):
        raise PermissionDeniedError("Only an owner can reactivate the account.")
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    if account.deletion_due_at is None:
        raise ValidationError("The account is not scheduled for deletion.")
    if account.deletion_due_at <= utcnow():
        raise ValidationError("The account's grace period is over; it can no longer be kept.")
    account.deletion_requested_at = None
    account.deletion_due_at = None
    record_activity(account.id)
    from privacy.services import record_lifecycle

    record_lifecycle("reactivated", account.id, f"member:{user_id}")
    record_security_event(account.id, user_id, SecurityEventKind.DELETION_CANCELLED)
    db.session.commit()
    return account


def delete_account_permanently(account_id: int, reason: str, condition: Any = None) -> bool:
    """Delete the account and everything of it (ON DELETE CASCADE on every account_id), and
    the users who belong to no other account. ``condition``: an extra SQL condition on the
    account row that must still hold (so a job racing a reactivation deletes nothing).

    Returns True when this call deleted it (False when it was already gone or no longer due);
    owners get a last email only then. Commits.
    """
    from sqlalchemy import delete

    from accounts.queries import owner_emails
    from privacy.services import record_lifecycle

    query = select(Account).where(Account.id == account_id)
    if condition is not None:
        query = query.where(condition)
    account = db.session.scalar(query.with_for_update())
    if account is None:
        db.session.rollback()
        return False
    name = account.name
    owners = owner_emails(account_id)
    member_ids = list(
        db.session.scalars(select(Membership.user_id).where(Membership.account_id == account_id))
    )
    from privacy import registry

    # Files, the outbox and the engine's contributions: what no cascade reaches.
    registry.delete_account(account_id)
    statement = delete(Account).where(Account.id == account_id)
    if condition is not None:
        statement = statement.where(condition)
    deleted = db.session.execute(statement.execution_options(synchronize_session=False))
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return False
    if member_ids:
        still_member = select(Membership.user_id).where(Membership.user_id.in_(member_ids))
        db.session.execute(
            delete(User)
            .where(User.id.in_(member_ids), User.id.not_in(still_member))
            .execution_options(synchronize_session=False)
        )
    record_lifecycle("deleted", account_id, "scheduler", detail=reason)
    db.session.commit()
    db.session.expunge_all()
    for owner in owners:
        try:
            send_system_mail(
                owner,
                f"{name} was deleted",
                f"The account {name} and all its data were deleted permanently ({reason}).",
            )
        except Exception:
            log.warning("deletion notice for account %s not sent", account_id)
    return True


def send_inactivity_warning(account_id: int, deletion_on: Any) -> None:
    """Email the owners that the account will be deleted for inactivity, and how to keep it."""
    from accounts.queries import owner_emails

    account = db.session.get(Account, account_id)
    if account is None:
        return
    day = timezones.format_datetime(deletion_on, account.time_zone, date_only=True)
    for owner in owner_emails(account_id):
        send_system_mail(
            owner,
            f"{account.name} will be deleted on {day} for inactivity",
            f"Nobody has logged in to {account.name} or sent a campaign for almost a year. "
            f"Unused accounts are deleted with all their data, so {account.name} will be "
            f"deleted on {day}.\n\n"
            f"To keep it, simply log in before then:\n{external_url('accounts.login')}",
        )
