"""Cursor pagination for the API's lists: keyset pages behind an opaque, signed cursor.

A cursor carries the sort, a digest of the filters and the last row's sort key and id, signed
(``core.signing``, purpose ``api.cursor``): a client cannot forge one, and a cursor used with
other filters or another sort is refused (422) instead of returning a wrong page. Pages are
keyset (``WHERE (key, id) > (last key, last id)``), so rows added meanwhile never shift or
repeat what the client already read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from core import db
from core.problems import FieldError, Problem
from core.signing import BadTokenError, Purpose, sign, unsign

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Sort:
    """One sort a list offers: the column it orders by (ties broken by id)."""

    column: InstrumentedAttribute[Any]
    #: Turns the row's value into JSON for the cursor and back into a bound value.
    dump: Callable[[Any], Any] = lambda value: value
    load: Callable[[Any], Any] = lambda value: value


@dataclass(frozen=True)
class PageOf(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _digest(filters: dict[str, Any]) -> str:
    text = json.dumps(filters, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _bad_cursor(message: str) -> Problem:
    return Problem(422, message, "validation-error", [FieldError("cursor", message)])


def keyset_page(
    query: Select[T],
    id_column: InstrumentedAttribute[int],
    sorts: dict[str, Sort],
    sort: str,
    limit: int,
    cursor: str | None,
    filters: dict[str, Any],
    key_of: Callable[[T], tuple[Any, int]],
) -> PageOf[T]:
    """One page of ``query`` in ``sort`` order (a name in ``sorts``, ``-`` for descending),
    after ``cursor``. ``key_of`` gives a row's (sort value, id)."""
    descending = sort.startswith("-")
    chosen = sorts.get(sort.removeprefix("-"))
    if chosen is None:
        raise Problem(
            422,
            f"Sort by one of: {', '.join(sorted(sorts))} (prefix - for descending).",
            "validation-error",
            [FieldError("sort", "unknown sort")],
        )
    digest = _digest(filters)
    column = chosen.column
    if cursor:
        try:
            payload = unsign(Purpose.API_CURSOR, cursor)
        except BadTokenError:
            raise _bad_cursor("This cursor is not one we issued.") from None
        if not isinstance(payload, list) or len(payload) != 4:
            raise _bad_cursor("This cursor is not one we issued.")
        made_sort, made_digest, last_value, last_id = payload
        if made_sort != sort or made_digest != digest:
            raise _bad_cursor("This cursor belongs to another sort or other filters.")
        value = chosen.load(last_value)
        if descending:
            after = or_(column < value, and_(column == value, id_column < last_id))
        else:
            after = or_(column > value, and_(column == value, id_column > last_id))
        query = query.where(after)
    order: Sequence[Any] = (
        (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    )
    rows = list(db.session.scalars(query.order_by(*order).limit(limit + 1)))
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit and items:
        value, last_id = key_of(items[-1])
        next_cursor = sign(Purpose.API_CURSOR, [sort, digest, chosen.dump(value), last_id])
    return PageOf(items, next_cursor)
