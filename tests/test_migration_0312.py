"""Migration 0312 on a database that already holds data: stored IP prefixes of tracking events
are gone, data requests past the rate-limit window lose their client prefix, and SQLite keeps
AUTOINCREMENT on contacts (both directions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from core.migrate import alembic_config, upgrade
from tests import services_available
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.raw_rows import insert_row as _insert


@pytest.fixture
def fresh_url(db_backend: str, tmp_path: Any) -> Iterator[str]:
    if db_backend == "postgresql":
        services_available.require("postgres")
        name, url = _create_postgres_database()
        try:
            yield url
        finally:
            _drop_postgres_database(name)
    else:
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"


def _url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_0312_clears_stored_prefixes_and_keeps_contacts_autoincrement(fresh_url: str) -> None:
    upgrade(fresh_url, "0307")
    engine = sa.create_engine(_url(fresh_url))
    now = datetime.now()
    with engine.begin() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        ids: dict[str, int] = {}
        for table in ("accounts", "mailing_lists", "contacts", "campaigns", "messages"):
            ids[table] = _insert(conn, meta, table, ids)
        _insert(conn, meta, "tracking_events", ids, ip_prefix="203.0.113.0/24", hit_uid="a")
        _insert(
            conn,
            meta,
            "tracking_events",
            ids,
            message_id=None,
            ip_prefix="198.51.100.0/24",
            hit_uid="b",
        )
        old = now - timedelta(days=3)
        _insert(conn, meta, "privacy_requests", ids, client_prefix="192.0.2.0/24", created_at=old)
        _insert(conn, meta, "privacy_requests", ids, client_prefix="192.0.2.0/24", created_at=now)
    upgrade(fresh_url, "0312")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("tracking_events")}
        assert "ip_prefix" not in columns
        events = conn.execute(sa.text("SELECT * FROM tracking_events")).mappings().all()
        dump = json.dumps([{k: str(v) for k, v in row.items()} for row in events])
        assert len(events) == 2 and "203.0.113" not in dump and "198.51.100" not in dump
        prefixes = conn.execute(
            sa.text("SELECT client_prefix FROM privacy_requests ORDER BY created_at")
        ).scalars()
        assert list(prefixes) == [None, "192.0.2.0/24"]  # the recent one serves the rate limit
        if engine.dialect.name == "sqlite":
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name='contacts'"))
            assert "AUTOINCREMENT" in sql.scalar_one()
    command.downgrade(alembic_config(fresh_url), "0307")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("contacts")}
        assert "tracking_refused_at" not in columns
        if engine.dialect.name == "sqlite":
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name='contacts'"))
            assert "AUTOINCREMENT" in sql.scalar_one()
    engine.dispose()
