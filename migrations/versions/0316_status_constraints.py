"""statuses checked by the database; an unsubscribed subscription has its time; one audience

Revision ID: 0316
Revises: 0307
Create Date: 2026-12-02 16:20:00

Campaign, message, subscription, import and data-request statuses were free text. They are
now checked by the database, and ``subscriptions.unsubscribed_at`` is required once a
subscription is unsubscribed (rows that lack it take their ``updated_at``, the time of the last
change, which is when they were unsubscribed).

PostgreSQL: CHECK constraints added NOT VALID and then validated, so the scan of a large
``messages`` table does not hold the exclusive lock. SQLite can add a CHECK constraint only by
rebuilding the table, and dropping ``campaigns`` to rebuild it would cascade to its messages
while foreign keys are enforced (they are, inside Alembic's transaction); on SQLite the same
rules are triggers that abort the statement with the constraint's name. A row that breaks a
rule stops the migration with the values found, before anything changes.

``campaigns.list_id`` repeated the audience that ``campaign_lists`` holds (it named the one list
of a single-list campaign, which an unsubscribe leaves). The list an unsubscribe leaves is now
derived from ``campaign_lists``; a campaign whose list was only in ``list_id`` gets its row
there, and the column is dropped. SQLite cannot drop a column that has a foreign key, so the
table is rebuilt; dropping the old ``campaigns`` table while foreign keys are enforced would
delete every message through their ON DELETE CASCADE, so the rebuild runs outside Alembic's
transaction with enforcement off, in a transaction of its own, and checks the keys after.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0316"
down_revision: str | Sequence[str] | None = "0314"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES: dict[str, tuple[str, ...]] = {
    "campaigns": ("draft", "scheduled", "starting", "sending", "paused", "sent", "cancelled"),
    "messages": ("pending", "claimed", "sent", "failed", "skipped"),
    "subscriptions": ("unconfirmed", "subscribed", "unsubscribed"),
    "import_jobs": ("uploaded", "queued", "running", "done", "failed"),
    "privacy_requests": ("received", "confirmed", "fulfilled", "expired"),
}
UNSUBSCRIBED_HAS_TIME = "status <> 'unsubscribed' OR unsubscribed_at IS NOT NULL"


def _status_rule(table: str) -> str:
    return "status IN (" + ", ".join(f"'{value}'" for value in STATUSES[table]) + ")"


def _rules() -> list[tuple[str, str, str]]:
    """(table, constraint name, condition every row must meet)."""
    rules = [(table, f"ck_{table}_status", _status_rule(table)) for table in STATUSES]
    rules.append(("subscriptions", "ck_subscriptions_unsubscribed_has_time", UNSUBSCRIBED_HAS_TIME))
    return rules


def _one_audience() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql(
        "INSERT INTO campaign_lists (campaign_id, list_id) "
        "SELECT id, list_id FROM campaigns WHERE list_id IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM campaign_lists WHERE campaign_lists.campaign_id = campaigns.id "
        "AND campaign_lists.list_id = campaigns.list_id)"
    )
    if bind.dialect.name != "sqlite":
        op.drop_column("campaigns", "list_id")
        return
    with op.get_context().autocommit_block():
        bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
        bind.exec_driver_sql("BEGIN")
        try:
            with op.batch_alter_table(
                "campaigns", recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ) as batch:
                batch.drop_column("list_id")
            problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
            if problems:
                raise RuntimeError(f"foreign key check failed after the rebuild: {problems[:5]}")
            bind.exec_driver_sql("COMMIT")
        except BaseException:
            bind.exec_driver_sql("ROLLBACK")
            raise
        finally:
            bind.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    _one_audience()
    bind = op.get_bind()
    bind.exec_driver_sql(
        "UPDATE subscriptions SET unsubscribed_at = COALESCE(updated_at, created_at) "
        "WHERE status = 'unsubscribed' AND unsubscribed_at IS NULL"
    )
    for table, name, condition in _rules():
        found = (
            bind.exec_driver_sql(
                f"SELECT DISTINCT status FROM {table} WHERE NOT ({condition})"  # noqa: S608
            )
            .scalars()
            .all()
        )
        if found:
            raise RuntimeError(
                f"{table}: rows break {name} (status values {found}); fix them first"
            )
    for table, name, condition in _rules():
        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID"
            )
            bind.exec_driver_sql(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
        else:
            for event in ("INSERT", "UPDATE"):
                bind.exec_driver_sql(
                    f"CREATE TRIGGER {name}_{event.lower()} BEFORE {event} ON {table} "
                    f"FOR EACH ROW WHEN NOT ({_new_row(condition)}) "
                    f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
                )


def _new_row(condition: str) -> str:
    """The condition about the row being written (SQLite triggers name it NEW)."""
    return re.sub(r"\b(status|unsubscribed_at)\b", r"NEW.\1", condition)


def downgrade() -> None:
    bind = op.get_bind()
    for table, name, _condition in reversed(_rules()):
        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        else:
            for event in ("insert", "update"):
                bind.exec_driver_sql(f"DROP TRIGGER {name}_{event}")
    if bind.dialect.name == "sqlite":
        # ADD COLUMN with a REFERENCES clause and a NULL default is allowed on SQLite.
        bind.exec_driver_sql(
            "ALTER TABLE campaigns ADD COLUMN list_id INTEGER "
            "CONSTRAINT fk_campaigns_list_id_mailing_lists "
            "REFERENCES mailing_lists (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("campaigns", sa.Column("list_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_campaigns_list_id_mailing_lists",
            "campaigns",
            "mailing_lists",
            ["list_id"],
            ["id"],
            ondelete="SET NULL",
        )
    bind.exec_driver_sql(
        "UPDATE campaigns SET list_id = (SELECT MIN(list_id) FROM campaign_lists "
        "WHERE campaign_lists.campaign_id = campaigns.id) "
        "WHERE (SELECT COUNT(*) FROM campaign_lists "
        "WHERE campaign_lists.campaign_id = campaigns.id) = 1 "
        "AND NOT EXISTS (SELECT 1 FROM campaign_segments "
        "WHERE campaign_segments.campaign_id = campaigns.id)"
    )
