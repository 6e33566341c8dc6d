"""tracking choices and IP minimisation: a recipient's tracking refusal; events keep no prefix

Revision ID: 0312
Revises: 0307
Create Date: 2026-12-02 16:30:00

``contacts.tracking_refused_at``: the person turned off tracking of their opens and clicks in
the preference centre (and stays subscribed). ``tracking_events.ip_prefix`` is dropped: a /24
(or /48) prefix next to an identified event linked a network to a person; machine
classification needs it only at ingest, and the machine reason (``network:<name>``) keeps what
it decided. Dropping the column clears every stored prefix. Data requests' client prefixes
older than the rate-limit window are cleared (the retention sweep keeps it so from now on).
Every column change is a plain ALTER TABLE (SQLite 3.35+ drops columns in place), so no SQLite
table is rebuilt and ``contacts`` keeps its AUTOINCREMENT (0307).
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0312"
down_revision: str | Sequence[str] | None = "0307"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("tracking_refused_at", sa.DateTime(), nullable=True))
    op.execute("ALTER TABLE tracking_events DROP COLUMN ip_prefix")
    # The rate limit looks back DATA_REQUEST_LIMIT_WINDOW (an hour by default); a day is more
    # than any sensible window, and the retention sweep applies the configured one.
    op.execute(
        sa.text(
            "UPDATE privacy_requests SET client_prefix = NULL "
            "WHERE client_prefix IS NOT NULL AND created_at < :cutoff"
        ).bindparams(cutoff=_one_day_ago())
    )


def _one_day_ago() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)


def downgrade() -> None:
    op.add_column("tracking_events", sa.Column("ip_prefix", sa.String(length=64), nullable=True))
    # A plain ALTER TABLE on both databases: no SQLite rebuild, so contacts keeps AUTOINCREMENT.
    op.execute("ALTER TABLE contacts DROP COLUMN tracking_refused_at")
