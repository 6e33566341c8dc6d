"""message_unsubscribes: one unsubscribe per message, undoable for a short time

Revision ID: 0302
Revises: 0207
Create Date: 2026-12-02 12:00:00

Replaying the RFC 8058 one-click POST (or pressing the page's button again) added another
unsubscribe to the campaign's figure. A row per message, unique on ``message_id``, now guards
the count under replays and concurrent requests; the campaign's figure counts its active rows
(plus the unsubscribe aggregates recorded before this revision).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0302"
down_revision: str | Sequence[str] | None = "0207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_unsubscribes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("list_ids", sa.JSON(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'undone')", name=op.f("ck_message_unsubscribes_status")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_message_unsubscribes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_message_unsubscribes_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_unsubscribes_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_unsubscribes")),
        sa.UniqueConstraint("message_id", name=op.f("uq_message_unsubscribes_message_id")),
    )
    with op.batch_alter_table("message_unsubscribes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_unsubscribes_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            "ix_message_unsubscribes_campaign_status", ["campaign_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message_unsubscribes", schema=None) as batch_op:
        batch_op.drop_index("ix_message_unsubscribes_campaign_status")
        batch_op.drop_index(batch_op.f("ix_message_unsubscribes_account_id"))
    op.drop_table("message_unsubscribes")
