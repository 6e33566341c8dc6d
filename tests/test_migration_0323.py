"""Migration 0323 on a database that already holds events: the roll-ups are filled from them,
PostgreSQL's tracking_events becomes partitioned by month with every row in its month, and
the downgrade gives back one plain table with the same rows (both directions, twice)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command

from core.migrate import alembic_config, upgrade
from tests.raw_rows import insert_row as _insert
from tests.test_migration_0312 import _url, fresh_url

__all__ = ["fresh_url"]  # the fixture, shared with the 0312 test


def _rows(conn: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(sa.text(sql))]


def test_0323_fills_the_rollups_and_partitions_existing_events(fresh_url: str) -> None:
    upgrade(fresh_url, "0318")
    engine = sa.create_engine(_url(fresh_url))
    old = datetime(2026, 9, 14, 10, 7)  # a month before the migration's own
    with engine.begin() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        ids: dict[str, int] = {}
        for table in ("accounts", "mailing_lists"):
            ids[table] = _insert(conn, meta, table, ids)
        ids["campaigns"] = _insert(conn, meta, "campaigns", ids, status="sent")
        ids["links"] = _insert(conn, meta, "links", ids)
        messages = []
        for address in ("ada@example.org", "bob@Example.org", "ольга@почта.example"):
            ids["contacts"] = _insert(conn, meta, "contacts", ids, email=address)
            messages.append(
                _insert(conn, meta, "messages", ids, contact_id=ids["contacts"], status="sent")
            )
        events = [
            # message, kind, time, machine, reason
            (messages[0], "open", old, False, None),
            (messages[0], "open", old + timedelta(minutes=20), False, None),
            (messages[1], "open", old + timedelta(minutes=3), False, None),
            (messages[2], "click", old + timedelta(days=40), False, None),
            (messages[2], "open", old + timedelta(days=40), True, "ua:apple-mpp"),
            (None, "open", old + timedelta(days=41), True, "head"),
            (None, "open", old + timedelta(days=41), False, None),
        ]
        for number, (message, kind, at, machine, reason) in enumerate(events):
            _insert(
                conn,
                meta,
                "tracking_events",
                ids,
                message_id=message,
                link_id=ids["links"] if kind == "click" else None,
                kind=kind,
                occurred_at=at,
                is_machine=machine,
                machine_reason=reason,
                ua_class="desktop",
                hit_uid=f"hit{number}",
            )
    upgrade(fresh_url, "0323")
    quarter = int((old - datetime(1970, 1, 1)).total_seconds()) // 900
    with engine.connect() as conn:
        assert _rows(
            conn,
            "SELECT quarter, kind, is_machine, total FROM tracking_quarter_stats "
            "ORDER BY quarter, kind, is_machine",
        ) == [
            (quarter, "open", False, 2),  # 10:07 and 10:10
            (quarter + 1, "open", False, 1),  # 10:27
            (quarter + 40 * 96, "click", False, 1),
            (quarter + 40 * 96, "open", True, 1),
            (quarter + 41 * 96, "open", False, 1),
            (quarter + 41 * 96, "open", True, 1),
        ]
        assert _rows(
            conn,
            "SELECT domain, kind, total, uniques FROM tracking_domain_stats ORDER BY domain, kind",
        ) == [("example.org", "open", 3, 2), ("почта.example", "click", 1, 1)]
        assert _rows(conn, "SELECT reason, total FROM tracking_reason_stats ORDER BY reason") == [
            ("head", 1),
            ("ua:apple-mpp", 1),
        ]
        if engine.dialect.name == "postgresql":
            placed = _rows(
                conn,
                "SELECT tableoid::regclass::text, count(*) FROM tracking_events "
                "GROUP BY 1 ORDER BY 1",
            )
            assert placed == [("tracking_events_p202609", 3), ("tracking_events_p202610", 4)]
            key = conn.execute(
                sa.text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conname = 'pk_tracking_events'"
                )
            ).scalar_one()
            assert key == "PRIMARY KEY (id, occurred_at)"
        # New events still get ids from the same sequence, after the old ones.
    with engine.begin() as conn:
        new_id = _insert(
            conn,
            meta,
            "tracking_events",
            ids,
            kind="open",
            occurred_at=datetime.now(),
            hit_uid="new",
        )
        assert new_id > len(events)
    for _ in range(2):
        command.downgrade(alembic_config(fresh_url), "0318")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM tracking_events")).scalar() == 8
            assert "tracking_quarter_stats" not in sa.inspect(conn).get_table_names()
            if engine.dialect.name == "postgresql":
                assert _rows(conn, "SELECT relname FROM pg_class WHERE relispartition") == []
        upgrade(fresh_url, "0323")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM tracking_events")).scalar() == 8
            total = conn.execute(sa.text("SELECT sum(total) FROM tracking_quarter_stats"))
            assert total.scalar() == 8
    engine.dispose()
