"""lists page counts members by status from a (list, status) index

Revision ID: 0328
Revises: 0327
Create Date: 2026-12-03 09:00:00

The lists page counts each list's subscribed and unsubscribed members. With only the unique
(list, contact) index that was a scan of every subscription of the account (0.15 to 0.3 s at a
million members); ``ix_subscriptions_list_id_status`` holds both columns, so each count reads
one range of it alone (an index-only scan where the table is vacuumed, as autovacuum keeps it:
0.05 s). It is a narrow B-tree (7 MB at a million rows, deduplicated), one more entry per
subscription an import inserts.

On a large table, run ``CREATE INDEX CONCURRENTLY`` by hand first (this migration then finds the
index and skips it): a plain ``CREATE INDEX`` blocks writes to the table while it builds.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0328"
down_revision: str | Sequence[str] | None = "0327"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_subscriptions_list_id_status",
        "subscriptions",
        ["list_id", "status"],
        unique=False,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_list_id_status", table_name="subscriptions")
