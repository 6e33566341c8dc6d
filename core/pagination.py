"""One page of a long list: the arithmetic and the query every paginated page shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select

from core import db

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items`` of page ``page`` (1-based) of ``pages``, out of ``total`` rows in all; with
    ``more``, ``total`` is where counting stopped and there are more rows than that."""

    items: list[T]
    page: int
    pages: int
    total: int
    more: bool = False


def window(total: int, page: int, size: int) -> tuple[int, int, int]:
    """``(page, pages, offset)`` for a wanted page: at least one page, and a page before the
    first or past the last gives the first or the last."""
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    return page, pages, (page - 1) * size


def paginate(
    query: Select[T], order_by: Any, page: int, size: int, count_at_most: int | None = None
) -> Page[T]:
    """One page of the entities ``query`` selects, in ``order_by`` order, with the total.

    ``count_at_most``: count no further than that many rows (``more`` says there are more, and
    the pages end there): a search matching a third of a million rows is counted in
    milliseconds instead of reading every match."""
    counted = query if count_at_most is None else query.limit(count_at_most + 1)
    total = int(db.session.scalar(select(func.count()).select_from(counted.subquery())) or 0)
    more = count_at_most is not None and total > count_at_most
    if more:
        total = count_at_most or 0
    page, pages, offset = window(total, page, size)
    items = list(db.session.scalars(query.order_by(order_by).offset(offset).limit(size)))
    return Page(items, page, pages, total, more)
