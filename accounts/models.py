"""Accounts (organisations), users and their memberships."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.permissions import Permission
from core.secrets import EncryptedText


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
    # Settings > Security (owners): every member must use a second factor (accounts/twofactor.py).
    require_two_factor: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )

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
    TWO_FACTOR_ENABLED = "two-factor-enabled"  # the user turned a second factor on elsewhere
    RECOVERY_CODE_USED = "recovery-code-used"  # a login with a recovery code (device lost)


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


class SecurityEventKind(StrEnum):
    """What a security-log entry records (accounts/audit.py; docs/readme/security.md)."""

    LOGIN = "login"
    LOGIN_FAILED = "login-failed"
    LOCKOUT = "lockout"
    PASSWORD_CHANGED = "password-changed"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET = "password-reset"  # noqa: S105 - an event name, not a secret
    SESSIONS_REVOKED = "sessions-revoked"
    ROLE_CHANGED = "role-changed"
    MEMBER_ADDED = "member-added"
    MEMBER_REMOVED = "member-removed"
    CONTACTS_EXPORTED = "contacts-exported"
    DELETION_REQUESTED = "deletion-requested"
    DELETION_CONFIRMED = "deletion-confirmed"
    DELETION_CANCELLED = "deletion-cancelled"
    SETTINGS_CHANGED = "settings-changed"
    DATA_REQUEST_FULFILLED = "data-request-fulfilled"
    BREACH_NOTICE = "breach-notice"
    TWO_FACTOR_ENABLED = "two-factor-enabled"
    TWO_FACTOR_DISABLED = "two-factor-disabled"
    RECOVERY_CODES_REGENERATED = "recovery-codes-renewed"
    RECOVERY_CODE_USED = "recovery-code-used"
    SECOND_FACTOR_FAILED = "second-factor-failed"
    TWO_FACTOR_REQUIREMENT_CHANGED = "two-factor-required"
    PASSKEY_ADDED = "passkey-added"
    PASSKEY_REMOVED = "passkey-removed"
    ROLE_DEFINED = "role-defined"
    ROLE_DELETED = "role-deleted"
    API_KEY_CREATED = "api-key-created"
    API_KEY_REVOKED = "api-key-revoked"


class SecurityEvent(Base):
    """One entry of an account's security log: who did what, when.

    ``details`` holds ids, counts, roles, setting values, a network prefix and the account's
    own members' addresses (account data the owners may see); never a contact's address or
    name. Kept ``SECURITY_LOG_RETENTION_DAYS`` (accounts.audit.apply_retention)."""

    __tablename__ = "security_events"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind.value}'" for kind in SecurityEventKind) + ")",
            name="kind",
        ),
        Index("ix_security_events_account_at", "account_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # Kept as a plain number (no foreign key): the entry outlives the person's user row.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class TotpCredential(Base):
    """A user's authenticator app (RFC 6238). A row without ``confirmed_at`` is an enrolment
    in progress (the secret was shown, no code confirmed it yet) and protects nothing."""

    __tablename__ = "totp_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # The base32 shared secret, stored encrypted (core/secrets.py, ENCRYPTION_KEYS).
    secret_base32: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The RFC 6238 time step of the last accepted code: a code is accepted once (no replay).
    last_used_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RecoveryCode(Base):
    """A one-time recovery code (argon2 hash only); ``used_at`` set means spent."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The session that logging in with this code opened (shown on the Sessions page).
    used_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="SET NULL"), nullable=True
    )


class LoginChallenge(Base):
    """A login half done: the password was right and the second factor is awaited. The
    cookie carries a random id whose SHA-256 is kept here (as for sessions); the row expires
    after ``LOGIN_CHALLENGE_SECONDS`` and is deleted when used, after too many wrong codes, or
    when the user's sessions are ended (password change or reset)."""

    __tablename__ = "login_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The WebAuthn challenge (base64url) handed to the browser for a passkey, if one was asked.
    passkey_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Passkey(Base):
    """A WebAuthn credential (a passkey or security key) usable as the second factor, next to
    the authenticator app. Only the public key is kept."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # base64url of the authenticator's credential id (at most 1023 bytes, WebAuthn level 3).
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SsoProvider(Base):
    """An account's OpenID Connect identity provider: people whose verified address is in
    ``email_domain`` log in through it and join the account in ``default_role`` the first
    time (just-in-time membership). One per account."""

    __tablename__ = "sso_providers"
    __table_args__ = (
        CheckConstraint("default_role IN ('admin', 'member')", name="default_role"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    # The client secret the provider issued: stored encrypted, never shown again once saved.
    client_secret: Mapped[str] = mapped_column(EncryptedText)
    # Lower-case domain (e.g. "shop.example"): only verified addresses there may log in, and a
    # login address names the provider to use.
    email_domain: Mapped[str] = mapped_column(String(255), unique=True)
    default_role: Mapped[str] = mapped_column(String(16), default="member")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
