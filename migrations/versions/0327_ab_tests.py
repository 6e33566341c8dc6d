"""A/B tests of subject and sender name; messages record their variant

Revision ID: 0327
Revises: 0326
Create Date: 2026-12-02 21:00:00

``messages.ab_variant`` and ``messages.ab_rest`` are new nullable columns (no table rebuild on SQLite, no index: the
report reads it by campaign through the existing (campaign, status, due) index).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0327"
down_revision: str | Sequence[str] | None = "0326"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("test_percent", sa.Integer(), nullable=False),
        sa.Column("wait_minutes", sa.Integer(), nullable=False),
        sa.Column("auto_send", sa.Boolean(), nullable=False),
        sa.Column("decide_at", sa.DateTime(), nullable=True),
        sa.Column("winner", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'testing', 'awaiting', 'done')", name=op.f("ck_ab_tests_status")
        ),
        sa.CheckConstraint("metric IN ('opens', 'clicks')", name=op.f("ck_ab_tests_metric")),
        sa.CheckConstraint(
            "test_percent >= 10 AND test_percent <= 50", name=op.f("ck_ab_tests_test_percent")
        ),
        sa.CheckConstraint("wait_minutes >= 1", name=op.f("ck_ab_tests_wait_minutes")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_ab_tests_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_ab_tests_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_tests")),
        sa.UniqueConstraint("campaign_id", name=op.f("uq_ab_tests_campaign_id")),
    )
    op.create_index(op.f("ix_ab_tests_account_id"), "ab_tests", ["account_id"])
    op.create_index(op.f("ix_ab_tests_decide_at"), "ab_tests", ["decide_at"])
    op.create_table(
        "ab_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ab_test_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["ab_test_id"],
            ["ab_tests.id"],
            name=op.f("fk_ab_variants_ab_test_id_ab_tests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_variants")),
        sa.UniqueConstraint(
            "ab_test_id", "position", name=op.f("uq_ab_variants_ab_test_id_position")
        ),
    )
    op.add_column("messages", sa.Column("ab_variant", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("ab_rest", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("ab_rest")
        batch.drop_column("ab_variant")
    op.drop_table("ab_variants")
    op.drop_index(op.f("ix_ab_tests_decide_at"), table_name="ab_tests")
    op.drop_index(op.f("ix_ab_tests_account_id"), table_name="ab_tests")
    op.drop_table("ab_tests")
