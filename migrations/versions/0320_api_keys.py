"""api_keys and api_idempotency: the REST API's keys and idempotent answers; API-key events in
the security log

Revision ID: 0320
Revises: 0318
Create Date: 2026-12-02 21:00:00

``api_keys`` holds an account's keys (name, shown prefix, SHA-256 of the secret, scopes,
creator, created, last used, revoked). ``api_idempotency`` keeps the answer to a creating POST
with an ``Idempotency-Key`` for 24 hours. The security log's kinds gain ``api-key-created`` and
``api-key-revoked``: PostgreSQL swaps the CHECK constraint; SQLite rebuilds ``security_events``
(no table refers to it, so the rebuild inside Alembic's transaction cascades to nothing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0320"
down_revision: str | Sequence[str] | None = "0318"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = (
    "login",
    "login-failed",
    "lockout",
    "password-changed",
    "password-reset",
    "sessions-revoked",
    "role-changed",
    "member-added",
    "member-removed",
    "contacts-exported",
    "deletion-requested",
    "deletion-confirmed",
    "deletion-cancelled",
    "settings-changed",
    "data-request-fulfilled",
    "breach-notice",
    "two-factor-enabled",
    "two-factor-disabled",
    "recovery-codes-renewed",
    "recovery-code-used",
    "second-factor-failed",
    "two-factor-required",
    "passkey-added",
    "passkey-removed",
    "role-defined",
    "role-deleted",
)
KINDS_AFTER = (*KINDS_BEFORE, "api-key-created", "api-key-revoked")


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _security_event_kinds(kinds: Sequence[str]) -> None:
    with op.batch_alter_table("security_events", recreate="auto") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_security_events_kind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_security_events_kind"), sa.text(_one_of("kind", kinds))
        )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_api_keys_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "api_idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_api_idempotency_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency")),
        sa.UniqueConstraint("account_id", "key", name=op.f("uq_api_idempotency_account_id_key")),
    )
    op.create_index(
        op.f("ix_api_idempotency_created_at"), "api_idempotency", ["created_at"], unique=False
    )
    _security_event_kinds(KINDS_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM security_events WHERE kind IN ('api-key-created', 'api-key-revoked')")
    _security_event_kinds(KINDS_BEFORE)
    op.drop_index(op.f("ix_api_idempotency_created_at"), table_name="api_idempotency")
    op.drop_table("api_idempotency")
    op.drop_index("ix_api_keys_account_id", table_name="api_keys")
    op.drop_table("api_keys")
