"""contact search by trigram indexes on PostgreSQL; kept message counts of large campaigns

Revision ID: 0324
Revises: 0323
Create Date: 2026-12-02 21:00:00

The contacts page finds a contact by a part of its address or name (``lower(email) LIKE
'%…%' OR lower(name) LIKE '%…%'``), which read every contact of the account: 1.2 s at a
million. On PostgreSQL the ``pg_trgm`` extension's GIN trigram indexes on ``lower(email)`` and
``lower(name)`` answer the same condition from the index (same results: the query is
unchanged). The extension is created when the server has it (it is a trusted extension, so a
database owner may create it since PostgreSQL 13); without it the indexes are left out and the
search stays a scan. The indexes are not in the models, because SQLite has no such index: the
embedded default keeps its scan (``migrations/env.py`` leaves them out of the comparison).

``campaign_message_counts`` keeps a campaign's messages counted by status, so the progress
poll, the campaign page, the dashboard and the campaign list of a million-message campaign read
one row instead of counting (``campaigns/progress_counts.py``). The reconciler fills it for
campaigns that are over, a few per run, so it starts empty.

On a large table, run ``CREATE INDEX CONCURRENTLY`` by hand first (this migration then finds the
indexes and skips them): a plain ``CREATE INDEX`` blocks writes to ``contacts`` while it builds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

revision: str = "0324"
down_revision: str | Sequence[str] | None = "0323"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Index name -> the expression it holds trigrams of.
TRIGRAM_INDEXES = {
    "ix_contacts_email_trgm": "lower(email)",
    "ix_contacts_name_trgm": "lower(name)",
}


def _has_trigrams() -> bool:
    bind = op.get_bind()
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        return False
    bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    return True


def upgrade() -> None:
    op.create_table(
        "campaign_message_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=False),
        sa.Column("counted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_campaign_message_counts_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_campaign_message_counts"),
    )
    if op.get_bind().dialect.name != "postgresql" or not _has_trigrams():
        return
    for name, expression in TRIGRAM_INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON contacts USING gin ({expression} gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_table("campaign_message_counts")
