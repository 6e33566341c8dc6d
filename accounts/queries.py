"""Reads about accounts and their members."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from accounts.models import (
    Account,
    Membership,
    Passkey,
    RecoveryCode,
    Role,
    SecurityEvent,
    SecurityEventKind,
    TotpCredential,
    User,
    UserSession,
)
from campaigns.models import Campaign
from core import db
from core.auth import CurrentMember
from core.db import utcnow
from core.errors import NotFoundError
from core.pagination import Page, paginate


def load_member(user_id: int, account_id: int, session_id: int = 0) -> CurrentMember | None:
    """The member view of a user in an account, or None if the membership no longer exists.
    The role and its permissions are read from the database on every call (never cached in
    the session), so a role change or an edit of a role's permissions counts from the next
    request on; so is whether the account requires a second factor this user has not set
    up."""
    row = db.session.execute(
        select(User, Account, Membership, TotpCredential.confirmed_at)
        .join(Membership, Membership.user_id == User.id)
        .join(Account, Account.id == Membership.account_id)
        .outerjoin(TotpCredential, TotpCredential.user_id == User.id)
        .where(User.id == user_id, Account.id == account_id)
    ).first()
    if row is None:
        return None
    user, account, membership, two_factor_since = row
    from accounts.roles import permissions_of

    role_name = membership.role.capitalize()
    grants: list[str] = []
    if membership.role_id is not None:
        custom = get_role(account.id, membership.role_id)
        role_name = custom.name
        grants = [grant.permission for grant in custom.grants]
    return CurrentMember(
        user_id=user.id,
        account_id=account.id,
        role=membership.role,
        name=user.name,
        email=user.email,
        account_name=account.name,
        is_platform_admin=user.is_platform_admin,
        deletion_pending=account.deletion_due_at is not None,
        session_id=session_id,
        must_enrol_two_factor=account.require_two_factor and two_factor_since is None,
        role_name=role_name,
        permissions=permissions_of(membership.role, grants),
        time_zone=account.time_zone or "UTC",
    )


def get_account(account_id: int) -> Account:
    """The account, or NotFoundError."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    return account


def account_time_zone(account_id: int) -> str:
    """The account's IANA zone name (UTC for an unknown account)."""
    zone = db.session.scalar(select(Account.time_zone).where(Account.id == account_id))
    return zone or "UTC"


@dataclass(frozen=True)
class TeamMember:
    """A member as the Team page shows them."""

    user: User
    role_key: str  # owner | admin | member | role:<id> (accounts.roles.resolve)
    role_name: str


def list_members(account_id: int) -> list[TeamMember]:
    """The account's members with their roles: owners, then admins, then the rest, by email."""
    rows = db.session.execute(
        select(User, Membership.role, Role.id, Role.name)
        .join(Membership, Membership.user_id == User.id)
        .outerjoin(Role, Role.id == Membership.role_id)
        .where(Membership.account_id == account_id)
    ).all()
    rank = {"owner": 0, "admin": 1}
    members = [
        TeamMember(user, f"role:{role_id}", role_name)
        if role_id is not None
        else TeamMember(user, role, role.capitalize())
        for user, role, role_id, role_name in rows
    ]
    return sorted(members, key=lambda m: (rank.get(m.role_key, 2), m.user.email.lower()))


def ip_handling_for_campaign(campaign_id: int) -> str:
    """How the campaign's account wants IP addresses handled: truncate or drop."""
    mode = db.session.scalar(
        select(Account.ip_handling)
        .join(Campaign, Campaign.account_id == Account.id)
        .where(Campaign.id == campaign_id)
    )
    return mode or "drop"


def owner_emails(account_id: int) -> list[str]:
    """The addresses of the account's owners (for lifecycle and data-request notices)."""
    return list(
        db.session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.account_id == account_id, Membership.role == "owner")
            .order_by(User.id)
        )
    )


@dataclass(frozen=True)
class PendingDeletion:
    """A confirmed deletion request of an account, as every member's pages show it."""

    due_at: datetime
    days_left: int  # whole days, rounded up; 0 on the last day
    owners: list[str]  # names (or addresses) of those who may reactivate: the owners


def pending_deletion(account_id: int) -> PendingDeletion | None:
    """The account's scheduled deletion, or None when none is scheduled."""
    account = db.session.get(Account, account_id)
    if account is None or account.deletion_due_at is None:
        return None
    seconds_left = (account.deletion_due_at - utcnow()).total_seconds()
    owners = db.session.execute(
        select(User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role == "owner")
        .order_by(User.id)
    ).all()
    return PendingDeletion(
        due_at=account.deletion_due_at,
        days_left=max(0, math.ceil(seconds_left / 86400)),
        owners=[name or email for name, email in owners],
    )


def list_sessions(user_id: int) -> list[UserSession]:
    """The user's live sessions (not revoked, not idle or too old), latest activity first."""
    now = utcnow()
    config = current_app.config
    return list(
        db.session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
                UserSession.last_seen_at
                > now - timedelta(seconds=int(config["SESSION_IDLE_TIMEOUT"])),
                UserSession.created_at > now - timedelta(seconds=int(config["SESSION_MAX_AGE"])),
            )
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        )
    )


#: Entries per page of the security log.
SECURITY_LOG_PAGE_SIZE = 50


@dataclass(frozen=True)
class SecurityLogPage:
    """One page of an account's security log and the names of the members who acted."""

    page: Page[SecurityEvent]
    #: user id -> the member's address (account data), for the actors on this page.
    actors: dict[int, str]


def security_log(account_id: int, kind: str | None = None, page: int = 1) -> SecurityLogPage:
    """The account's security log, newest first, optionally of one kind (an unknown kind
    gives every kind), one page of :data:`SECURITY_LOG_PAGE_SIZE`."""
    query = select(SecurityEvent).where(SecurityEvent.account_id == account_id)
    if kind in {k.value for k in SecurityEventKind}:
        query = query.where(SecurityEvent.kind == kind)
    # Ids grow with time: newest first by id (the (account, at) index serves the filter).
    found = paginate(query, SecurityEvent.id.desc(), page, SECURITY_LOG_PAGE_SIZE)
    actor_ids = {e.actor_user_id for e in found.items if e.actor_user_id is not None}
    actors = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_(actor_ids))).all())
        if actor_ids
        else {}
    )
    return SecurityLogPage(found, {int(k): str(v) for k, v in actors.items()})


@dataclass(frozen=True)
class TwoFactorStatus:
    """What *Your login > Two-factor* shows."""

    enabled_at: datetime | None
    pending: bool  # an enrolment was started and not confirmed
    codes_left: int
    codes_used: list[datetime]  # when each spent recovery code was used, newest first


def two_factor_status(user_id: int) -> TwoFactorStatus:
    """The user's second factor: on since when, recovery codes left and used."""
    credential = db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == user_id))
    used_at = list(
        db.session.scalars(
            select(RecoveryCode.used_at)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_not(None))
            .order_by(RecoveryCode.used_at.desc())
        )
    )
    total = db.session.scalar(select(func.count()).where(RecoveryCode.user_id == user_id))
    return TwoFactorStatus(
        enabled_at=credential.confirmed_at if credential else None,
        pending=credential is not None and credential.confirmed_at is None,
        codes_left=int(total or 0) - len(used_at),
        codes_used=[at for at in used_at if at is not None],
    )


def recovery_logins(user_id: int) -> dict[int, datetime]:
    """The user's sessions opened with a recovery code: session id -> when the code was used."""
    rows = db.session.execute(
        select(RecoveryCode.used_session_id, RecoveryCode.used_at).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_session_id.is_not(None)
        )
    ).all()
    return {int(sid): at for sid, at in rows if sid is not None and at is not None}


def members_without_two_factor(account_id: int) -> list[User]:
    """The account's members who have no confirmed second factor (Settings > Security)."""
    return list(
        db.session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .outerjoin(TotpCredential, TotpCredential.user_id == User.id)
            .where(Membership.account_id == account_id, TotpCredential.confirmed_at.is_(None))
            .order_by(User.email)
        )
    )


def list_passkeys(user_id: int) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return list(
        db.session.scalars(select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.id))
    )


def list_roles(account_id: int) -> list[Role]:
    """The account's own roles, by name."""
    return list(
        db.session.scalars(
            select(Role).where(Role.account_id == account_id).order_by(func.lower(Role.name))
        )
    )


def role_usage(account_id: int) -> dict[int, int]:
    """How many members hold each of the account's own roles (role id -> count)."""
    rows = db.session.execute(
        select(Membership.role_id, func.count())
        .where(Membership.account_id == account_id, Membership.role_id.is_not(None))
        .group_by(Membership.role_id)
    ).all()
    return {int(role_id or 0): int(count) for role_id, count in rows}


def get_role(account_id: int, role_id: int) -> Role:
    """The account's role, or NotFoundError (also for another account's role)."""
    role = db.session.scalar(select(Role).where(Role.account_id == account_id, Role.id == role_id))
    if role is None:
        raise NotFoundError("role")
    return role
