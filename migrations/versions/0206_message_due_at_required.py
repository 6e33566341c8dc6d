"""messages.due_at always set, and claims read the (campaign, status, due_at, id) index

Revision ID: 0206
Revises: 0205
Create Date: 2026-11-22 04:10:00

A claim takes the first due pending rows in (due_at, id) order, which this index serves
without reading the rows sent before; with due_at NULL for "now" it had to filter past them.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0206"
down_revision: str | Sequence[str] | None = "0205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    op.execute(
        sa.text("UPDATE messages SET due_at = :now WHERE due_at IS NULL").bindparams(now=now)
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("due_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_index("ix_messages_campaign_id_status_due_at")
        batch_op.create_index(
            "ix_messages_campaign_status_due",
            ["campaign_id", "status", "due_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_campaign_status_due")
        batch_op.create_index(
            "ix_messages_campaign_id_status_due_at",
            ["campaign_id", "status", "due_at"],
            unique=False,
        )
        batch_op.alter_column("due_at", existing_type=sa.DateTime(), nullable=True)
