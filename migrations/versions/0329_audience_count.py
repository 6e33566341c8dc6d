"""Contacts keep the keyed hash of their address; indexes and statistics for the audience count

Revision ID: 0329
Revises: 0328
Create Date: 2026-12-03 07:10:00

``contacts.address_hash`` is the HMAC the suppression list holds (``subscribers.hashing``), so an
audience count joins suppressions instead of hashing a million addresses. A nullable column: no
table rewrite on PostgreSQL, no rebuild on SQLite. The migration cannot fill it (it runs without
the app's ``ADDRESS_HASH_KEY``, and a wrong key would let suppressed people be mailed): the
scheduler's ``contact-address-hashes`` job fills existing rows in chunks, and until then counts
hash the rows still empty as before.

PostgreSQL also gets statistics on the domain of the addresses (an expression statistics object,
PostgreSQL 14 and later): the count groups an audience by domain, and without them the planner
expects a million groups and sorts a million rows instead of hashing into a hundred; and a
partial index of the few non-ASCII addresses, which the count reads again to check in Python;
and a partial index of the engine's suppressed addresses (``engine.queries.is_suppressed``): the
count reads them by index instead of scanning every address the engine knows, which also lets
its aggregate run in parallel.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0329"
down_revision: str | Sequence[str] | None = "0328"
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
        op.create_index(
            "ix_engine_addresses_suppressed",
            "engine_addresses",
            ["domain", "address_hash"],
            postgresql_where=sa.text(
                "complained > 0 OR (bounced > 0 AND (last_delivered_on IS NULL"
                " OR last_bounced_on >= last_delivered_on))"
            ),
        )
        op.create_index(
            "ix_contacts_non_ascii",
            "contacts",
            ["id"],
            postgresql_where=sa.text("octet_length(email) <> length(email)"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_contacts_non_ascii", table_name="contacts")
        op.drop_index("ix_engine_addresses_suppressed", table_name="engine_addresses")
        op.execute("DROP STATISTICS IF EXISTS contacts_email_domain")
    op.drop_index("ix_contacts_address_hash_missing", table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("address_hash")
