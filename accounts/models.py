"""Accounts (organisations), users and their memberships."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.permissions import Permission


class Account(Base):
    """An organisation: owns lists, contacts, campaigns and its privacy settings."""

    __tablename__ = "accounts"
    # Ids are never reused on SQLite: an old cookie or link must never name a newer row.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    postal_address: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # IANA zone name (core.timezones): times are shown and entered in it; storage stays UTC.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Privacy settings. The default is private: no identified tracking, truncated IPs.
    individual_tracking: Mapped[bool] = mapped_column(Boolean, default=False)
    ip_handling: Mapped[str] = mapped_column(String(16), default="truncate")  # truncate | drop
    event_retention_days: Mapped[int] = mapped_column(Integer, default=180)
    # Settings > Advanced: participation in the Delivery Optimization Engine (default on).
    engine_participation: Mapped[bool] = mapped_column(Boolean, default=True)
    # Lifecycle.
    last_activity_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deletion_requested_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deletion_due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    inactivity_warning_sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )


class User(Base):
    """A person who signs in to the web UI."""

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class BuiltinRole(StrEnum):
    """The roles every account has; their permissions are defined in code (accounts/roles.py)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


#: ``Membership.role`` of a member who holds one of the account's own roles (``role_id``).
CUSTOM_ROLE = "custom"


class Membership(Base):
    """A user's role in an account: a built-in one (owner, admin, member) or one of the
    account's own roles (``role = 'custom'`` and ``role_id``). The composite foreign key makes
    the database refuse a role of another account, and refuses to delete a role in use."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("account_id", "user_id"),
        ForeignKeyConstraint(["account_id", "role_id"], ["roles.account_id", "roles.id"]),
        CheckConstraint(
            f"(role = '{CUSTOM_ROLE}' AND role_id IS NOT NULL) OR (role IN ("
            + ", ".join(f"'{role.value}'" for role in BuiltinRole)
            + ") AND role_id IS NULL)",
            name="role",
        ),
        Index("ix_memberships_role_id", "role_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    role_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class Role(Base):
    """A role an account defined for itself: a name and a set of permissions."""

    __tablename__ = "roles"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        # The target of memberships' (account_id, role_id) foreign key.
        UniqueConstraint("account_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    grants: Mapped[list[RolePermission]] = relationship(
        cascade="all, delete-orphan", order_by="RolePermission.permission"
    )

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset(Permission(grant.permission) for grant in self.grants)


class RolePermission(Base):
    """One permission of a custom role."""

    __tablename__ = "role_permissions"
    __table_args__ = (
        CheckConstraint(
            "permission IN (" + ", ".join(f"'{p.value}'" for p in Permission) + ")",
            name="permission",
        ),
    )

    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(32), primary_key=True)


class RevokeReason(StrEnum):
    """Why a session ended before its expiry."""

    LOGOUT = "logout"  # the person logged out of this session
    REVOKED = "revoked"  # ended from the Sessions page (one, or everywhere else)
    PASSWORD_CHANGED = "password-changed"  # noqa: S105 - the password changed (session rotated)
    PASSWORD_RESET = "password-reset"  # noqa: S105 - the password was reset by emailed link
    REMOVED = "removed"  # the user was removed from the session's account
    ACCOUNT_DELETION = "account-deletion"  # the account's deletion was confirmed


class UserSession(Base):
    """A signed-in browser. The cookie carries only a random 256-bit id; this row keeps its
    SHA-256, so a stolen database does not hold usable cookies. A row that is revoked, expired
    or missing means logged out."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        CheckConstraint(
            "revoked_reason IS NULL OR revoked_reason IN ("
            + ", ".join(f"'{reason.value}'" for reason in RevokeReason)
            + ")",
            name="revoked_reason",
        ),
        Index("ix_user_sessions_user_active", "user_id", "revoked_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Privacy: a coarse device class and the network prefix (/24, /48), never the raw values.
    ua_class: Mapped[str] = mapped_column(String(32), default="other")
    ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
