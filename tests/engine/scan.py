"""Reading every engine table whole, to prove what it does or does not hold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from core import db
from engine.models import ENGINE_TABLES
from engine.services import domain_of, engine_hash


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every engine table (ledger ids left out), sorted: comparable states."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for model in ENGINE_TABLES:
        table = model.__table__
        columns = [c for c in table.columns if c.name != "id"]  # type: ignore[attr-defined]
        rows = db.session.execute(select(*columns)).all()
        state[table.name] = sorted(tuple(row) for row in rows)  # type: ignore[attr-defined]
    return state


def rows_derived_from(
    account_id: int, emails: Iterable[str], domains: Iterable[str] = ()
) -> list[tuple[str, tuple[Any, ...]]]:
    """Rows of any engine table that carry the account's id, one of these addresses' engine
    hashes, or one of these domains (domains only the account mails)."""
    hashes = {engine_hash(email) for email in emails}
    domain_set = set(domains)
    found = []
    for model in ENGINE_TABLES:
        table = model.__table__
        for row in db.session.execute(select(table)).mappings():  # type: ignore[call-overload]
            values = dict(row)
            if (
                values.get("account_id") == account_id
                or values.get("address_hash") in hashes
                or values.get("domain") in domain_set
            ):
                found.append((table.name, tuple(values.values())))  # type: ignore[attr-defined]
    return found


def domains_of(emails: Iterable[str]) -> set[str]:
    return {domain_of(email) for email in emails}
