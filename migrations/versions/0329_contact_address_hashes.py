"""Contacts keep the keyed hash of their address

Revision ID: 0329
Revises: 0327
Create Date: 2026-12-03 07:10:00

``contacts.address_hash`` is the HMAC the suppression list holds (``subscribers.hashing``), so an
audience count joins suppressions instead of hashing a million addresses. A nullable column: no
table rewrite on PostgreSQL, no rebuild on SQLite. The migration cannot fill it (it runs without
the app's ``ADDRESS_HASH_KEY``, and a wrong key would let suppressed people be mailed): the
scheduler's ``contact-address-hashes`` job fills existing rows in chunks, and until then counts
hash the rows still empty as before.

PostgreSQL also gets statistics on the domain of the addresses (an expression statistics object,
PostgreSQL 14 and later): the count groups an audience by domain, and without them the planner
expects a million groups and sorts a million rows instead of hashing into a hundred.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0329"
down_revision: str | Sequence[str] | None = "0327"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("address_hash", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_contacts_address_hash_missing",
        "contacts",
        ["id"],
        postgresql_where=sa.text("address_hash IS NULL"),
        sqlite_where=sa.text("address_hash IS NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS IF NOT EXISTS contacts_email_domain"
            " ON (split_part(email, '@', -1)) FROM contacts"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS contacts_email_domain")
    op.drop_index("ix_contacts_address_hash_missing", table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("address_hash")
