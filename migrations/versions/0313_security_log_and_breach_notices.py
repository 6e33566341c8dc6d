"""security_events (an account's security log) and breach notices (incidents, the accounts
they affect, and their log)

Revision ID: 0313
Revises: 0307
Create Date: 2026-12-02 16:30:00

The security log records logins, failed logins, lockouts, password and session changes, team
changes, exports, deletion requests, privacy settings, fulfilled data requests and breach
notices per account (accounts/audit.py). Breach notices (policy 003, s.11) are recorded by
platform operators and sent to the owners of the affected accounts (breaches/).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0313"
down_revision: str | Sequence[str] | None = "0312"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECURITY_EVENT_KINDS = (
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
INCIDENT_STATUSES = ("recorded", "notified", "reported")
INCIDENT_STEPS = (
    "recorded",
    "accounts-selected",
    "notices-sent",
    "notice-delivered",
    "report-sent",
    "report-delivered",
)


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            _one_of("kind", SECURITY_EVENT_KINDS), name=op.f("ck_security_events_kind")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_security_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    with op.batch_alter_table("security_events", schema=None) as batch_op:
        batch_op.create_index("ix_security_events_account_at", ["account_id", "at"])
        batch_op.create_index(batch_op.f("ix_security_events_at"), ["at"])

    op.create_table(
        "breach_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("what_happened", sa.Text(), nullable=False),
        sa.Column("discovered_at", sa.DateTime(), nullable=False),
        sa.Column("data_categories", sa.Text(), nullable=False),
        sa.Column("consequences", sa.Text(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("reported_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            _one_of("status", INCIDENT_STATUSES), name=op.f("ck_breach_incidents_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach_incidents")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "breach_incident_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("contacts_concerned", sa.Integer(), nullable=False),
        sa.Column("selected_at", sa.DateTime(), nullable=False),
        sa.Column("notice_sent_at", sa.DateTime(), nullable=True),
        sa.Column("report_sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_breach_incident_accounts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["breach_incidents.id"],
            name=op.f("fk_breach_incident_accounts_incident_id_breach_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach_incident_accounts")),
        sa.UniqueConstraint(
            "incident_id",
            "account_id",
            name=op.f("uq_breach_incident_accounts_incident_id_account_id"),
        ),
    )
    with op.batch_alter_table("breach_incident_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breach_incident_accounts_account_id"), ["account_id"])
        batch_op.create_index(
            batch_op.f("ix_breach_incident_accounts_incident_id"), ["incident_id"]
        )
    op.create_table(
        "breach_incident_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            _one_of("step", INCIDENT_STEPS), name=op.f("ck_breach_incident_log_step")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["breach_incidents.id"],
            name=op.f("fk_breach_incident_log_incident_id_breach_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach_incident_log")),
    )
    with op.batch_alter_table("breach_incident_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breach_incident_log_incident_id"), ["incident_id"])


def downgrade() -> None:
    op.drop_table("breach_incident_log")
    op.drop_table("breach_incident_accounts")
    op.drop_table("breach_incidents")
    op.drop_table("security_events")
