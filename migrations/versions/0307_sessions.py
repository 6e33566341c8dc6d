"""user_sessions: server-side sessions; ids never reused on SQLite

Revision ID: 0307
Revises: 0306
Create Date: 2026-12-02 12:10:00

A session cookie named a user id and an account id only. SQLite reuses the highest row id
after a delete, so a cookie kept past an account's deletion opened the next sign-up's account.
Sessions are now rows (the cookie carries a random id whose hash is stored here), and the tables
whose ids reach cookies, emailed links or tokens are rebuilt on SQLite with AUTOINCREMENT so
their ids are never reused. PostgreSQL sequences never reuse ids; there only the table is
created.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0307"
down_revision: str | Sequence[str] | None = "0306"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = (
    "logout",
    "revoked",
    "password-changed",
    "password-reset",
    "removed",
    "account-deletion",
)
#: Tables whose ids reach cookies, emailed links or tokens (so a reused id would name another
#: row): rebuilt on SQLite with AUTOINCREMENT. Parents before children.
AUTOINCREMENT_TABLES = (
    "accounts",
    "users",
    "memberships",
    "contacts",
    "signup_confirmations",
    "campaigns",
    "links",
    "messages",
    "senders",
    "privacy_requests",
    "privacy_downloads",
)
_TABLE_PK = re.compile(r",\s*(CONSTRAINT \w+ )?PRIMARY KEY \(id\)")
_ID_COLUMN = re.compile(r"\(\s*id INTEGER NOT NULL,")


def _rebuilt_sql(table: str, sql: str, autoincrement: bool) -> str:
    """The table's own CREATE statement under a temporary name, with or without AUTOINCREMENT."""
    sql = re.sub(rf'^CREATE TABLE\s+"?{table}"?\s*\(', f'CREATE TABLE "_new_{table}" (', sql)
    if autoincrement and "id INTEGER NOT NULL PRIMARY KEY," in sql:  # after a downgrade
        sql = sql.replace("PRIMARY KEY,", "PRIMARY KEY AUTOINCREMENT,", 1)
        changed = True
    elif autoincrement:
        sql, removed = _TABLE_PK.subn("", sql, count=1)
        sql, added = _ID_COLUMN.subn("(\n\tid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,", sql)
        changed = removed == added == 1
    else:
        changed = "PRIMARY KEY AUTOINCREMENT" in sql
        sql = sql.replace("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY", 1)
    if not changed or not sql.startswith(f'CREATE TABLE "_new_{table}"'):
        raise RuntimeError(f"migration 0307: unexpected definition of {table}: {sql[:200]}")
    return sql


def _rebuild_with_autoincrement(autoincrement: bool) -> None:
    """Rebuild the tables on SQLite (the only way to change AUTOINCREMENT), following SQLite's
    procedure: copy into a new table made from the table's own CREATE statement, drop, rename,
    and run the table's index statements again (expression and partial indexes included).

    Dropping a table with foreign keys enforced runs its ON DELETE CASCADE actions, which would
    empty every table of every account. Enforcement is switched off first; SQLite ignores that
    inside a transaction, so when it stays on the rebuild goes ahead only on empty tables (a
    fresh install migrating in one run) and otherwise stops before touching anything.
    """
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        for table in AUTOINCREMENT_TABLES:
            if bind.exec_driver_sql(f'SELECT 1 FROM "{table}" LIMIT 1').first():  # noqa: S608
                raise RuntimeError(
                    "Migration 0307 must rebuild tables with foreign keys off; run it on its "
                    "own: alembic upgrade 0307"
                )
    for table in AUTOINCREMENT_TABLES:
        sql = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar()
        if ("AUTOINCREMENT" in str(sql)) == autoincrement:
            continue
        others = list(
            bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? "
                "AND type IN ('index', 'trigger') AND sql IS NOT NULL",
                (table,),
            ).scalars()
        )
        bind.exec_driver_sql(_rebuilt_sql(table, str(sql), autoincrement))
        bind.exec_driver_sql(f'INSERT INTO "_new_{table}" SELECT * FROM "{table}"')  # noqa: S608
        bind.exec_driver_sql(f'DROP TABLE "{table}"')
        bind.exec_driver_sql(f'ALTER TABLE "_new_{table}" RENAME TO "{table}"')
        for statement in others:
            bind.exec_driver_sql(statement)
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        raise RuntimeError(f"foreign key check failed after the rebuild: {problems[:5]}")
    bind.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_with_autoincrement(True)
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ua_class", sa.String(length=32), nullable=False),
        sa.Column("ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "revoked_reason IS NULL OR revoked_reason IN ("
            + ", ".join(f"'{reason}'" for reason in REASONS)
            + ")",
            name=op.f("ck_user_sessions_revoked_reason"),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_user_sessions_account_id", ["account_id"], unique=False)
        batch_op.create_index(
            "ix_user_sessions_user_active", ["user_id", "revoked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_user_sessions_user_active")
        batch_op.drop_index("ix_user_sessions_account_id")
    op.drop_table("user_sessions")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_with_autoincrement(False)
