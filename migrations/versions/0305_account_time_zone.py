"""accounts.time_zone: the IANA zone an account sees and enters times in

Revision ID: 0305
Revises: 0303
Create Date: 2026-12-02 12:00:00

Storage stays UTC; the zone only changes how times are shown and read. Existing accounts get
"UTC", which is how they saw every time before. Campaign best-hour windows
(campaigns.best_hour_start/end) are read as the account's local hours from now on; with UTC
they mean what they meant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0305"
down_revision: str | Sequence[str] | None = "0303"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
