"""content formats: campaigns and templates say how their body is written

Revision ID: 0325
Revises: 0324
Create Date: 2026-12-02 21:00:00

``content_format`` (visual, richtext, markdown, html, plain; checked by the database) and
``content_source`` (the body as written: MJML, rich-text HTML, markdown, HTML or text) are
added to ``campaigns`` and ``campaign_templates``. ``html_body`` stays the compiled HTML that
is previewed and sent. Existing rows were raw HTML: they become ``html`` with their HTML as the
source.

Both databases take ``ALTER TABLE ... ADD COLUMN`` with a named column CHECK constraint, so no
table is rebuilt (SQLite checks the existing rows when the column is added; they all hold the
default).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0325"
down_revision: str | Sequence[str] | None = "0324"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("campaigns", "campaign_templates")
FORMATS = ("visual", "richtext", "markdown", "html", "plain")


def upgrade() -> None:
    bind = op.get_bind()
    allowed = ", ".join(f"'{value}'" for value in FORMATS)
    for table in TABLES:
        bind.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN content_format VARCHAR(16) DEFAULT 'html' NOT NULL "
            f"CONSTRAINT ck_{table}_content_format CHECK (content_format IN ({allowed}))"
        )
        bind.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN content_source TEXT DEFAULT '' NOT NULL"
        )
        bind.exec_driver_sql(f"UPDATE {table} SET content_source = html_body")  # noqa: S608


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in TABLES:
            op.drop_column(table, "content_source")
            op.drop_column(table, "content_format")  # its CHECK constraint goes with it
        return
    # SQLite cannot drop a column that a CHECK constraint names: the tables are rebuilt, with
    # foreign keys off (dropping ``campaigns`` while they are enforced would delete every
    # message through ON DELETE CASCADE), in a transaction of their own, keys checked after.
    with op.get_context().autocommit_block():
        bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
        bind.exec_driver_sql("BEGIN")
        try:
            for table in TABLES:
                # Dropping the old table drops its triggers (0316's status checks): kept here.
                triggers = (
                    bind.exec_driver_sql(
                        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                        (table,),
                    )
                    .scalars()
                    .all()
                )
                kwargs = {"sqlite_autoincrement": True} if table == "campaigns" else {}
                with op.batch_alter_table(table, recreate="always", table_kwargs=kwargs) as batch:
                    batch.drop_constraint(op.f(f"ck_{table}_content_format"), type_="check")
                    batch.drop_column("content_source")
                    batch.drop_column("content_format")
                for trigger in triggers:
                    bind.exec_driver_sql(trigger)
            problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
            if problems:
                raise RuntimeError(f"foreign key check failed after the rebuild: {problems[:5]}")
            bind.exec_driver_sql("COMMIT")
        except BaseException:
            bind.exec_driver_sql("ROLLBACK")
            raise
        finally:
            bind.exec_driver_sql("PRAGMA foreign_keys=ON")
