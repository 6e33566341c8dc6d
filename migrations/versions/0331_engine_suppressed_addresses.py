"""The engine's suppressed addresses, by the hash contacts keep

Revision ID: 0331
Revises: 0330
Create Date: 2026-12-03 10:10:00

``engine_suppressed_addresses`` holds the ``contacts.address_hash`` of every address the
Delivery Optimization Engine suppresses now (``privacy.models.EngineSuppressedAddress``), so an
audience count joins it instead of computing the engine's keyed hash of a million addresses.
The engine gate keeps it; its daily maintenance job, which the scheduler runs on its first
tick after a start, fills it. Until that first run a count leaves the engine's suppressions out
(the sender itself still skips them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0331"
down_revision: str | Sequence[str] | None = "0330"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_suppressed_addresses",
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("address_hash", name=op.f("pk_engine_suppressed_addresses")),
    )


def downgrade() -> None:
    op.drop_table("engine_suppressed_addresses")
