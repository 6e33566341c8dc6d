"""Reads about accounts and their members."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from accounts.models import Account, Membership, User, UserSession
from campaigns.models import Campaign
from core import db
from core.auth import CurrentMember
from core.db import utcnow
from core.errors import NotFoundError


def load_member(user_id: int, account_id: int, session_id: int = 0) -> CurrentMember | None:
    """The member view of a user in an account, or None if the membership no longer exists.
    The role is read from the membership on every call (never cached in the session)."""
    row = db.session.execute(
        select(User, Account, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .join(Account, Account.id == Membership.account_id)
        .where(User.id == user_id, Account.id == account_id)
    ).first()
    if row is None:
        return None
    user, account, role = row
    return CurrentMember(
        user_id=user.id,
        account_id=account.id,
        role=role,
        name=user.name,
        email=user.email,
        account_name=account.name,
        is_platform_admin=user.is_platform_admin,
        deletion_pending=account.deletion_due_at is not None,
        session_id=session_id,
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


def list_members(account_id: int) -> list[tuple[User, str]]:
    """The account's members with their roles, owners first."""
    rows = db.session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
        .order_by(Membership.role.desc(), User.email)
    ).all()
    return [(user, role) for user, role in rows]


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
