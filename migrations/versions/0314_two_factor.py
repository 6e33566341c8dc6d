"""two factor: authenticator apps (TOTP), passkeys, recovery codes, half-done logins, setting

Revision ID: 0314
Revises: 0307
Create Date: 2026-12-02 16:10:00

A login can need a second factor: an RFC 6238 code from an authenticator app or a one-time
recovery code (argon2 hashes only). Between the password and the code the login is a row in
``login_challenges`` (the cookie carries a random id whose hash is kept), never a client-signed
user id. ``accounts.require_two_factor`` makes the second factor mandatory for every member.
The TOTP secret (``secret_base32``) is stored encrypted (core.secrets.EncryptedText, migration 0318).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0314"
down_revision: str | Sequence[str] | None = "0313"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Why a session ended (accounts.models.RevokeReason): 0307's reasons, then the two added here.
OLD_REASONS = (
    "logout",
    "revoked",
    "password-changed",
    "password-reset",
    "removed",
    "account-deletion",
)
NEW_REASONS = (*OLD_REASONS, "two-factor-enabled", "recovery-code-used")


def _sessions_table(reasons: tuple[str, ...]) -> sa.Table:
    """user_sessions as 0307 made it, with the revoked_reason check listing ``reasons``."""
    return sa.Table(
        "user_sessions",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ua_class", sa.String(length=32), nullable=False),
        sa.Column("ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint(_reason_check(reasons), name="ck_user_sessions_revoked_reason"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_user_sessions_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_user_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
        sa.Index("ix_user_sessions_account_id", "account_id"),
        sa.Index("ix_user_sessions_user_active", "user_id", "revoked_at"),
        sqlite_autoincrement=True,
    )


def _reason_check(reasons: tuple[str, ...]) -> str:
    return (
        "revoked_reason IS NULL OR revoked_reason IN ("
        + ", ".join(f"'{reason}'" for reason in reasons)
        + ")"
    )


def _set_reasons(reasons: tuple[str, ...]) -> None:
    """Replace the check on user_sessions.revoked_reason (SQLite: a rebuild that keeps
    AUTOINCREMENT, the rows and the indexes)."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "user_sessions",
            recreate="always",
            copy_from=_sessions_table(reasons),
            table_kwargs={"sqlite_autoincrement": True},
        ):
            pass
    else:
        op.drop_constraint(op.f("ck_user_sessions_revoked_reason"), "user_sessions", type_="check")
        op.create_check_constraint(
            op.f("ck_user_sessions_revoked_reason"), "user_sessions", _reason_check(reasons)
        )


def upgrade() -> None:
    _set_reasons(NEW_REASONS)
    op.add_column(
        "accounts",
        sa.Column("require_two_factor", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "totp_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_base32", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_step", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_totp_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_credentials")),
        sa.UniqueConstraint("user_id", name=op.f("uq_totp_credentials_user_id")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_session_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["used_session_id"],
            ["user_sessions.id"],
            name=op.f("fk_recovery_codes_used_session_id_user_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"])
    op.create_table(
        "login_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("passkey_challenge", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_login_challenges_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_login_challenges_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_challenges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_login_challenges_token_hash")),
    )
    op.create_index(op.f("ix_login_challenges_user_id"), "login_challenges", ["user_id"])
    op.create_table(
        "passkeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_passkeys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkeys_credential_id")),
    )
    op.create_index(op.f("ix_passkeys_user_id"), "passkeys", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_passkeys_user_id"), table_name="passkeys")
    op.drop_table("passkeys")
    op.execute(
        "UPDATE user_sessions SET revoked_reason = 'revoked' "
        "WHERE revoked_reason IN ('two-factor-enabled', 'recovery-code-used')"
    )
    _set_reasons(OLD_REASONS)
    op.drop_index(op.f("ix_login_challenges_user_id"), table_name="login_challenges")
    op.drop_table("login_challenges")
    op.drop_index(op.f("ix_recovery_codes_user_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("totp_credentials")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a plain column in place: no rebuild of accounts (whose children
        # would cascade) and AUTOINCREMENT stays.
        op.execute("ALTER TABLE accounts DROP COLUMN require_two_factor")
    else:
        op.drop_column("accounts", "require_two_factor")
