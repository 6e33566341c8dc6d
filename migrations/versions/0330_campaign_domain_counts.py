"""A campaign's delivery by recipient domain, kept once it is over

Revision ID: 0330
Revises: 0329
Create Date: 2026-12-03 07:50:00

``campaign_domain_counts`` holds, per campaign and recipient domain, the messages sent and
failed (counts only), written by the send reconciler when it keeps a campaign's final counts
(``campaigns.delivery_domains``): the report reads them instead of counting a million messages
by their contacts' domains. Campaigns over before this migration get them from the reconciler's
backfill (a few per run); until then the report counts as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0330"
down_revision: str | Sequence[str] | None = "0329"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_domain_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_domain_counts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "domain", name=op.f("pk_campaign_domain_counts")),
    )


def downgrade() -> None:
    op.drop_table("campaign_domain_counts")
