"""transactional_messages: one triggered message to one address; objections suppressed as such

Revision ID: 0321
Revises: 0320
Create Date: 2026-12-02 21:10:00

A transactional message (a receipt, a welcome mail) goes through the campaigns' pipeline but is
not part of a campaign: it has a table of its own, with its status checked by the database.

Suppression: an objection (GDPR art. 21) was kept as a platform-wide ``unsubscribed`` hash,
which cannot be told from an unsubscribe. Transactional mail goes to a person who unsubscribed
from marketing but not to one who objected, so platform-wide rows get their own reason,
``objected`` (the objection is the only thing that writes platform-wide ``unsubscribed`` rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0321"
down_revision: str | Sequence[str] | None = "0320"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("queued", "sent", "failed", "bounced")


def upgrade() -> None:
    op.create_table(
        "transactional_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("to_name", sa.String(length=200), nullable=False),
        sa.Column("from_email", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.Column("reply_to", sa.String(length=320), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("track_opens", sa.Boolean(), nullable=False),
        sa.Column("track_clicks", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("smtp_started_at", sa.DateTime(), nullable=True),
        sa.Column("smtp_message_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("bounce_kind", sa.String(length=16), nullable=True),
        sa.Column("bounce_diagnostic", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("bounced_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
            name=op.f("ck_transactional_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_transactional_messages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_transactional_messages_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["campaign_templates.id"],
            name=op.f("fk_transactional_messages_template_id_campaign_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactional_messages")),
        sa.UniqueConstraint(
            "account_id",
            "idempotency_key",
            name=op.f("uq_transactional_messages_account_id_idempotency_key"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_transactional_messages_account_created",
        "transactional_messages",
        ["account_id", "created_at"],
    )
    op.create_index(
        op.f("ix_transactional_messages_contact_id"), "transactional_messages", ["contact_id"]
    )
    op.create_index(op.f("ix_transactional_messages_status"), "transactional_messages", ["status"])
    op.execute(
        "UPDATE suppressions SET reason = 'objected' "
        "WHERE account_id IS NULL AND reason = 'unsubscribed'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE suppressions SET reason = 'unsubscribed' "
        "WHERE account_id IS NULL AND reason = 'objected'"
    )
    op.drop_index(op.f("ix_transactional_messages_status"), table_name="transactional_messages")
    op.drop_index(op.f("ix_transactional_messages_contact_id"), table_name="transactional_messages")
    op.drop_index("ix_transactional_messages_account_created", table_name="transactional_messages")
    op.drop_table("transactional_messages")
