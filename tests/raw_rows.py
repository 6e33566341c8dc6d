"""Rows written straight into a database at some migration (no models, no services): for the
migration tests and benchmarks that need data in a schema older than the code's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa


def _value(column: sa.Column[Any], ids: dict[str, int]) -> Any:
    """Some valid value for a required column (a foreign key names the row made before)."""
    for key in column.foreign_keys:
        return ids[key.column.table.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer | sa.Float | sa.Numeric):
        return 1
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 1, 1)
    if isinstance(kind, sa.Date):
        return datetime(2026, 1, 1).date()
    if isinstance(kind, sa.JSON):
        return {}
    return "x"


def insert_row(
    conn: sa.Connection, meta: sa.MetaData, table: str, ids: dict[str, int], **values: Any
) -> int:
    """A row of ``table`` (reflected in ``meta``) with ``values`` and a made-up value in every
    other required column; returns its id."""
    target = meta.tables[table]
    row = dict(values)
    for column in target.columns:
        if column.name in row or column.primary_key or column.nullable:
            continue
        if column.server_default is not None:
            continue
        row[column.name] = _value(column, ids)
    result = conn.execute(sa.insert(target).values(**row).returning(target.c.id))
    return int(result.scalar_one())
