"""contact search by trigram indexes on PostgreSQL

Revision ID: 0324
Revises: 0318
Create Date: 2026-12-02 21:00:00

The contacts page finds a contact by a part of its address or name (``lower(email) LIKE
'%…%' OR lower(name) LIKE '%…%'``), which read every contact of the account: 1.2 s at a
million. On PostgreSQL the ``pg_trgm`` extension's GIN trigram indexes on ``lower(email)`` and
``lower(name)`` answer the same condition from the index (same results: the query is
unchanged). The extension is created when the server has it (it is a trusted extension, so a
database owner may create it since PostgreSQL 13); without it the indexes are left out and the
search stays a scan. The indexes are not in the models, because SQLite has no such index: the
embedded default keeps its scan (``migrations/env.py`` leaves them out of the comparison).

On a large table, run ``CREATE INDEX CONCURRENTLY`` by hand first (this migration then finds the
indexes and skips them): a plain ``CREATE INDEX`` blocks writes to ``contacts`` while it builds.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0324"
down_revision: str | Sequence[str] | None = "0318"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Index name -> the expression it holds trigrams of.
TRIGRAM_INDEXES = {
    "ix_contacts_email_trgm": "lower(email)",
    "ix_contacts_name_trgm": "lower(name)",
}


def _has_trigrams() -> bool:
    bind = op.get_bind()
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        return False
    bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    return True


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql" or not _has_trigrams():
        return
    for name, expression in TRIGRAM_INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON contacts USING gin ({expression} gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
