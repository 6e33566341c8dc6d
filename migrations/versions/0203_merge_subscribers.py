"""merge subscribers

Revision ID: 0203
Revises: 0103, 0202
Create Date: 2026-11-22 02:14:15.905691
"""

from collections.abc import Sequence

revision: str = "0203"
down_revision: str | Sequence[str] | None = ("0103", "0202")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
