"""merge sending

Revision ID: 0202
Revises: 0104, 0201
Create Date: 2026-11-22 01:54:12.809205
"""

from collections.abc import Sequence

revision: str = "0202"
down_revision: str | Sequence[str] | None = ("0104", "0201")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
