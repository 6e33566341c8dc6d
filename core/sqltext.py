"""Text comparisons that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class folded(GenericFunction[str]):  # lower case: used like a SQL function
    """``lower(text)`` in every script: PostgreSQL's ``lower``; on SQLite, whose ``lower``
    folds ASCII only, Python's ``str.lower`` registered by :func:`core.db.make_engine`."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded_default(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"
