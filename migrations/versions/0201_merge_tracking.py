"""merge tracking

Revision ID: 0201
Revises: 0105, 0200
Create Date: 2026-11-22 01:41:46.939287
"""

from collections.abc import Sequence

revision: str = "0201"
down_revision: str | Sequence[str] | None = ("0105", "0200")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
