"""tracking roll-ups (quarter hours, recipient domains, machine reasons); tracking_events
partitioned by month on PostgreSQL

Revision ID: 0323
Revises: 0322
Create Date: 2026-12-02 21:00:00

Three roll-up tables, filled from the events there are (counts only, no personal data):
``tracking_quarter_stats`` (campaign, UTC quarter hour, kind, human/machine),
``tracking_domain_stats`` (campaign, recipient domain, kind: human identified events and the
messages with one) and ``tracking_reason_stats`` (campaign, machine reason). Reports read
them instead of the events (tracking/rollups.py).

The hit id's unique index now holds the event time too (a unique index of a partitioned
table must hold its partition key; a hit stored twice has the same time). On PostgreSQL
``tracking_events`` becomes a table partitioned by RANGE of ``occurred_at``: one partition
per UTC month from the oldest event's to three months ahead, and a DEFAULT partition; the
rows are copied in, the old table dropped, the new one renamed, and its primary key is
``(id, occurred_at)`` (the key must hold the partition key; ids still come from the same
sequence). No foreign key references ``tracking_events``. SQLite keeps one table: only the
index changes there (no rebuild). The downgrade gives back a plain table on PostgreSQL.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0323"
down_revision: str | Sequence[str] | None = "0322"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3

#: The indexes of tracking_events besides its primary key (as the model declares them).
_INDEXES = (
    "CREATE INDEX ix_tracking_events_account_id ON tracking_events (account_id)",
    "CREATE INDEX ix_tracking_events_message_id ON tracking_events (message_id)",
    "CREATE INDEX ix_tracking_events_campaign_kind ON tracking_events (campaign_id, kind)",
    "CREATE INDEX ix_tracking_events_account_occurred ON tracking_events (account_id, occurred_at)",
    "CREATE UNIQUE INDEX uq_tracking_events_hit_uid ON tracking_events (hit_uid, occurred_at)",
    "CREATE INDEX ix_tracking_events_human ON tracking_events (message_id, kind, link_id) "
    "WHERE message_id IS NOT NULL AND is_machine = false",
    "CREATE INDEX ix_tracking_events_evidence ON tracking_events (message_id, occurred_at) "
    "WHERE machine_reason IN ('honeypot', 'head')",
)

_COLUMNS = (
    "id, account_id, campaign_id, link_id, message_id, kind, occurred_at, is_machine, "
    "machine_reason, ua_class, hit_uid"
)


def _table(definition: str) -> str:
    """CREATE TABLE of tracking_events' columns and foreign keys, named ``tracking_events``
    + the suffix, ending with ``definition`` (a PARTITION BY clause, or nothing)."""
    return (
        "(id integer NOT NULL DEFAULT nextval('tracking_events_id_seq'), "
        "account_id integer NOT NULL, campaign_id integer NOT NULL, link_id integer, "
        "message_id integer, kind varchar(16) NOT NULL, occurred_at timestamp NOT NULL, "
        "is_machine boolean NOT NULL, machine_reason varchar(32), "
        "ua_class varchar(32) NOT NULL, hit_uid varchar(32), "
        "CONSTRAINT fk_tracking_events_account_id_accounts FOREIGN KEY (account_id) "
        "REFERENCES accounts (id) ON DELETE CASCADE, "
        "CONSTRAINT fk_tracking_events_campaign_id_campaigns FOREIGN KEY (campaign_id) "
        "REFERENCES campaigns (id) ON DELETE CASCADE, "
        "CONSTRAINT fk_tracking_events_link_id_links FOREIGN KEY (link_id) "
        "REFERENCES links (id) ON DELETE SET NULL, "
        "CONSTRAINT fk_tracking_events_message_id_messages FOREIGN KEY (message_id) "
        "REFERENCES messages (id) ON DELETE SET NULL) " + definition
    )


def _rollup_tables() -> None:
    def create(name: str, columns: list[sa.Column], unique: list[str]) -> None:
        op.create_table(
            name,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("account_id", sa.Integer(), nullable=False),
            sa.Column("campaign_id", sa.Integer(), nullable=False),
            *columns,
            sa.ForeignKeyConstraint(
                ["account_id"],
                ["accounts.id"],
                name=op.f(f"fk_{name}_account_id_accounts"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["campaign_id"],
                ["campaigns.id"],
                name=op.f(f"fk_{name}_campaign_id_campaigns"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
            sa.UniqueConstraint(*unique, name=op.f(f"uq_{name}_{'_'.join(unique)}")),
        )
        op.create_index(op.f(f"ix_{name}_account_id"), name, ["account_id"], unique=False)

    create(
        "tracking_quarter_stats",
        [
            sa.Column("quarter", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("is_machine", sa.Boolean(), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
        ],
        ["campaign_id", "quarter", "kind", "is_machine"],
    )
    create(
        "tracking_domain_stats",
        [
            sa.Column("domain", sa.String(length=255), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("uniques", sa.Integer(), nullable=False),
        ],
        ["campaign_id", "domain", "kind"],
    )
    create(
        "tracking_reason_stats",
        [
            sa.Column("reason", sa.String(length=32), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
        ],
        ["campaign_id", "reason"],
    )


def _backfill(dialect: str) -> None:
    """The roll-ups of the events there are, counted as the ingest counts them."""
    if dialect == "postgresql":
        quarter = "CAST(floor(extract(epoch FROM occurred_at) / 900) AS integer)"
        domain = "lower(substr(c.email, strpos(c.email, '@') + 1))"
    else:
        quarter = "CAST(strftime('%s', occurred_at) AS integer) / 900"
        domain = "lower(substr(c.email, instr(c.email, '@') + 1))"
    op.execute(
        "INSERT INTO tracking_quarter_stats "  # noqa: S608 - fixed SQL
        "(account_id, campaign_id, quarter, kind, is_machine, total) "
        f"SELECT account_id, campaign_id, {quarter}, kind, is_machine, count(*) "
        "FROM tracking_events WHERE kind IN ('open', 'click') "
        f"GROUP BY account_id, campaign_id, {quarter}, kind, is_machine"
    )
    op.execute(
        "INSERT INTO tracking_domain_stats "  # noqa: S608 - fixed SQL
        "(account_id, campaign_id, domain, kind, total, uniques) "
        f"SELECT e.account_id, e.campaign_id, {domain}, e.kind, count(*), "
        "count(DISTINCT e.message_id) FROM tracking_events e "
        "JOIN messages m ON m.id = e.message_id JOIN contacts c ON c.id = m.contact_id "
        "WHERE e.is_machine = false AND e.kind IN ('open', 'click') AND c.email LIKE '%@%' "
        f"GROUP BY e.account_id, e.campaign_id, {domain}, e.kind"
    )
    op.execute(
        "INSERT INTO tracking_reason_stats (account_id, campaign_id, reason, total) "
        "SELECT account_id, campaign_id, coalesce(machine_reason, 'machine'), count(*) "
        "FROM tracking_events WHERE is_machine = true "
        "GROUP BY account_id, campaign_id, coalesce(machine_reason, 'machine')"
    )


def _months(first: datetime, last: datetime) -> list[datetime]:
    start, months = datetime(first.year, first.month, 1), []
    while start <= last:
        months.append(start)
        start = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return months


def _partition_by_month() -> None:
    """PostgreSQL: tracking_events becomes partitioned by month (see the module's text)."""
    bind = op.get_bind()
    oldest = bind.execute(sa.text("SELECT min(occurred_at) FROM tracking_events")).scalar()
    now = datetime.now(UTC).replace(tzinfo=None)
    ahead = datetime(now.year + (now.month + MONTHS_AHEAD - 1) // 12,
                     (now.month + MONTHS_AHEAD - 1) % 12 + 1, 1)  # fmt: skip
    op.execute("ALTER SEQUENCE tracking_events_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE tracking_events_partitioned " + _table("PARTITION BY RANGE (occurred_at)")
    )
    op.execute("CREATE TABLE tracking_events_default PARTITION OF tracking_events_partitioned "
               "DEFAULT")  # fmt: skip
    for start in _months(min(oldest or now, now), ahead):
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
        op.execute(
            f"CREATE TABLE tracking_events_p{start.year:04d}{start.month:02d} "
            f"PARTITION OF tracking_events_partitioned FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    op.execute(
        f"INSERT INTO tracking_events_partitioned ({_COLUMNS}) "  # noqa: S608 - fixed SQL
        f"SELECT {_COLUMNS} FROM tracking_events"
    )
    op.execute("DROP TABLE tracking_events")
    op.execute("ALTER TABLE tracking_events_partitioned RENAME TO tracking_events")
    op.execute(
        "ALTER TABLE tracking_events ADD CONSTRAINT pk_tracking_events "
        "PRIMARY KEY (id, occurred_at)"
    )
    for statement in _INDEXES:
        op.execute(statement)
    op.execute("ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events.id")


def _one_table() -> None:
    """PostgreSQL: tracking_events as one plain table again, rows kept."""
    op.execute("ALTER SEQUENCE tracking_events_id_seq OWNED BY NONE")
    op.execute("CREATE TABLE tracking_events_plain " + _table(""))
    op.execute(
        f"INSERT INTO tracking_events_plain ({_COLUMNS}) "  # noqa: S608 - fixed SQL
        f"SELECT {_COLUMNS} FROM tracking_events"
    )
    op.execute("DROP TABLE tracking_events")  # the partitions go with it
    op.execute("ALTER TABLE tracking_events_plain RENAME TO tracking_events")
    op.execute("ALTER TABLE tracking_events ADD CONSTRAINT pk_tracking_events PRIMARY KEY (id)")
    for statement in _INDEXES:
        op.execute(statement.replace("(hit_uid, occurred_at)", "(hit_uid)"))
    op.execute("ALTER SEQUENCE tracking_events_id_seq OWNED BY tracking_events.id")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rollup_tables()
    _backfill(dialect)
    if dialect == "postgresql":
        _partition_by_month()
    else:
        op.drop_index("uq_tracking_events_hit_uid", table_name="tracking_events")
        op.create_index(
            "uq_tracking_events_hit_uid", "tracking_events", ["hit_uid", "occurred_at"], unique=True
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _one_table()
    else:
        op.drop_index("uq_tracking_events_hit_uid", table_name="tracking_events")
        op.create_index("uq_tracking_events_hit_uid", "tracking_events", ["hit_uid"], unique=True)
    for name in ("tracking_reason_stats", "tracking_domain_stats", "tracking_quarter_stats"):
        op.drop_index(op.f(f"ix_{name}_account_id"), table_name=name)
        op.drop_table(name)
