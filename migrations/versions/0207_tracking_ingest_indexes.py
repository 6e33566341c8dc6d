"""tracking_events: partial indexes for the ingest's per-batch questions

Revision ID: 0207
Revises: 0206
Create Date: 2026-11-22 09:30:00

The ingest asks, per batch, which of its messages already have a human event (for uniques)
and which showed machine evidence (honeypot, HEAD). Both read through the message_id index
every event of those messages, a cost that grew with each message's history. Two partial
indexes answer them from the few rows that matter.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0207"
down_revision: str | Sequence[str] | None = "0206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HUMAN = sa.text("message_id IS NOT NULL AND is_machine = false")
EVIDENCE = sa.text("machine_reason IN ('honeypot', 'head')")


def upgrade() -> None:
    with op.batch_alter_table("tracking_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tracking_events_human",
            ["message_id", "kind", "link_id"],
            unique=False,
            postgresql_where=HUMAN,
            sqlite_where=HUMAN,
        )
        batch_op.create_index(
            "ix_tracking_events_evidence",
            ["message_id", "occurred_at"],
            unique=False,
            postgresql_where=EVIDENCE,
            sqlite_where=EVIDENCE,
        )


def downgrade() -> None:
    with op.batch_alter_table("tracking_events", schema=None) as batch_op:
        batch_op.drop_index("ix_tracking_events_evidence")
        batch_op.drop_index("ix_tracking_events_human")
