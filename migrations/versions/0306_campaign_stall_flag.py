"""campaigns: when messages last reached an outcome, and the send path's last error

Revision ID: 0306
Revises: 0305
Create Date: 2026-12-02 12:30:00

A sending campaign that makes no progress is flagged on its page with the cause: the last
transport or platform error, or that no worker holds a claim. ``last_progress_at`` cannot be
that clock: claims write it (a claim that fails and is retried looks like progress) and the
reconciler sets it when it re-enqueues.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0306"
down_revision: str | Sequence[str] | None = "0305"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_outcome_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("last_error_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("last_error_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("last_outcome_at")
