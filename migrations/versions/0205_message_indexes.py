"""messages: only the indexes queries need (claims and marks rewrite every index)

Revision ID: 0205
Revises: 0204
Create Date: 2026-11-22 03:50:00

The single-column indexes on campaign_id (covered by the unique pair and the campaign-status
index), status and claim_token (replaced by a partial index of claimed rows) and
smtp_message_id (bounces find the row by the id the Message-ID names) are dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0205"
down_revision: str | Sequence[str] | None = "0204"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIMED = sa.text("status = 'claimed'")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_campaign_id")
        batch_op.drop_index("ix_messages_status")
        batch_op.drop_index("ix_messages_claim_token")
        batch_op.drop_index("ix_messages_smtp_message_id")
        batch_op.create_index(
            "ix_messages_claims",
            ["claim_token", "claimed_at"],
            unique=False,
            postgresql_where=CLAIMED,
            sqlite_where=CLAIMED,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_claims", postgresql_where=CLAIMED, sqlite_where=CLAIMED)
        batch_op.create_index("ix_messages_smtp_message_id", ["smtp_message_id"], unique=False)
        batch_op.create_index("ix_messages_claim_token", ["claim_token"], unique=False)
        batch_op.create_index("ix_messages_status", ["status"], unique=False)
        batch_op.create_index("ix_messages_campaign_id", ["campaign_id"], unique=False)
