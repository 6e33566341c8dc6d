"""import_jobs: the file's encoding and separator

Revision ID: 0303
Revises: 0302
Create Date: 2026-12-02 12:10:00

Imports read semicolon- and tab-separated files in UTF-16 or Windows-1252 too: the format is
detected at upload and the person may change it before the import starts. Existing jobs were
all read as comma-separated UTF-8.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0303"
down_revision: str | Sequence[str] | None = "0302"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("encoding", sa.String(length=16), server_default="utf-8", nullable=False)
        )
        batch_op.add_column(
            sa.Column("delimiter", sa.String(length=1), server_default=",", nullable=False)
        )
        batch_op.create_check_constraint(
            "ck_import_jobs_encoding", "encoding IN ('utf-8', 'utf-16-le', 'utf-16-be', 'cp1252')"
        )
        batch_op.create_check_constraint(
            "ck_import_jobs_delimiter", "delimiter IN (',', ';', '\t')"
        )


def downgrade() -> None:
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_constraint("ck_import_jobs_delimiter", type_="check")
        batch_op.drop_constraint("ck_import_jobs_encoding", type_="check")
        batch_op.drop_column("delimiter")
        batch_op.drop_column("encoding")
