"""media_files: the media library's images (bytes in MEDIA_DIR or an S3 bucket)

Revision ID: 0326
Revises: 0325
Create Date: 2026-12-02 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0326"
down_revision: str | Sequence[str] | None = "0325"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("extension", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_media_files_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_media_files_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_files")),
        sa.UniqueConstraint("key", name=op.f("uq_media_files_key")),
    )
    op.create_index(op.f("ix_media_files_account_id"), "media_files", ["account_id"])
    op.create_index(op.f("ix_media_files_uploaded_by_id"), "media_files", ["uploaded_by_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_media_files_uploaded_by_id"), table_name="media_files")
    op.drop_index(op.f("ix_media_files_account_id"), table_name="media_files")
    op.drop_table("media_files")
