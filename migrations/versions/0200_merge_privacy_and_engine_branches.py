"""merge privacy and engine branches

Revision ID: 0200
Revises: 0106, 0107
Create Date: 2026-11-22 01:26:21.166253
"""

from collections.abc import Sequence

revision: str = "0200"
down_revision: str | Sequence[str] | None = ("0106", "0107")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
