"""Every write into the engine's tables. Called only by :mod:`privacy.engine_gate` and
:mod:`engine.tasks`; the gate has already decided that the account and contact may enter.

Recording updates the ledger and the learned tables together (atomic increments, so concurrent
workers add up). Removing contributions deletes ledger rows and recomputes the learned rows of
every key they touched from what remains, so the removed account's effect is gone exactly.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    LargeBinary,
    SQLColumnExpression,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from core import db
from core.db import utcnow
from core.sqlhash import hmac_sha256_hex, utf8
from engine.models import (
    ENGAGEMENTS,
    KINDS,
    EngineAddress,
    EngineAddressHour,
    EngineContribution,
    EngineDomainDay,
)
from engine.settings import hash_key, setting

#: The learned column each kind of contribution adds to.
COLUMN_OF_KIND = {
    "delivered": "delivered",
    "deferred": "deferred",
    "bounced": "bounced",
    "complained": "complained",
    "open": "opens",
    "click": "clicks",
}
_CHUNK = 500


def engine_hash(email: str) -> str:
    """The engine's keyed hash of an address: HMAC-SHA256 under ENGINE_HASH_KEY.

    A different key from the suppression hash (``subscribers.suppression.address_hash``), and a
    purpose label inside the message, so engine rows cannot be joined to suppression rows.
    """
    message = _HASH_LABEL + email.strip().lower().encode()
    return hmac.new(hash_key(), message, hashlib.sha256).hexdigest()


_HASH_LABEL = b"envoy-engine-v1\x00"


def engine_hash_sql(email: SQLColumnExpression[str]) -> ColumnElement[str]:
    """:func:`engine_hash` of an address column, computed by PostgreSQL (:mod:`core.sqlhash`).
    Equal to the Python form for ASCII addresses (SQL ``lower`` is Python's there)."""
    lowered = utf8(func.lower(func.btrim(email)))
    return hmac_sha256_hex(hash_key(), literal(_HASH_LABEL, LargeBinary).op("||")(lowered))


def domain_of(email: str) -> str:
    """The lower-cased domain of an address ('' when there is none)."""
    return email.strip().rpartition("@")[2].lower()


# --- recording -----------------------------------------------------------------------------


def _upsert(
    table: Table,
    keys: dict[str, Any],
    add: dict[str, int],
    latest: dict[str, date] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Insert the row or add ``add`` to its counters and move ``latest`` dates forward."""
    _upsert_many(table, [(keys, add, latest or {}, extra or {})])


def _upsert_many(
    table: Table,
    rows: Sequence[tuple[dict[str, Any], dict[str, int], dict[str, date], dict[str, Any]]],
) -> None:
    """:func:`_upsert` for rows of one shape, in one executemany, in key order (two jobs
    upserting the same rows lock them in the same order: no deadlock)."""
    if not rows:
        return
    keys, add, latest, extra = rows[0]
    dialect = db.session.get_bind().dialect.name
    shape = (dialect, table.name, tuple(keys), tuple(add), tuple(latest), tuple(extra))
    statement = _UPSERTS.get(shape)
    if statement is None:
        statement = _build_upsert(dialect, table, keys, add, latest, extra)
        _UPSERTS[shape] = statement
    ordered = sorted(rows, key=lambda row: tuple(str(value) for value in row[0].values()))
    db.session.execute(
        statement, [{**keys, **add, **latest, **extra} for keys, add, latest, extra in ordered]
    )


_UPSERTS: dict[tuple[Any, ...], Any] = {}


def _build_upsert(
    dialect: str,
    table: Table,
    keys: dict[str, Any],
    add: dict[str, int],
    latest: dict[str, date],
    extra: dict[str, Any],
) -> Any:
    """One statement per shape, with bound parameters: built once, cached by SQLAlchemy."""
    names = [*keys, *add, *latest, *extra]
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(
        {name: bindparam(name) for name in names}
    )
    excluded = statement.excluded
    updates: dict[str, Any] = {name: table.c[name] + excluded[name] for name in add}
    for name in latest:
        newer = excluded[name]
        if dialect == "postgresql":
            updates[name] = func.greatest(func.coalesce(table.c[name], newer), newer)
        else:
            updates[name] = func.max(func.coalesce(table.c[name], newer), newer)
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


def record(account_id: int, email: str, kind: str, at: datetime, count: int = 1) -> None:
    """Add ``count`` events of ``kind`` for ``email`` from ``account_id`` at ``at`` (UTC).

    The caller (the gate) has checked that the account and contact may enter. No commit.
    """
    record_many(account_id, [email], kind, at, count)


def record_many(
    account_id: int, emails: Sequence[str], kind: str, at: datetime, count: int = 1
) -> None:
    """:func:`record` for many addresses at once (a send claim's deliveries): the same rows,
    added up per key, one statement per table. No commit."""
    if kind not in KINDS:
        raise ValueError(f"unknown engine kind {kind!r}")
    if not emails:
        return
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    day, hour = at.date(), at.hour
    column = COLUMN_OF_KIND[kind]
    latest: dict[str, date] = {}
    if kind == "delivered":
        latest["last_delivered_on"] = day
    elif kind == "bounced":
        latest["last_bounced_on"] = day
    per_address: dict[str, int] = {}
    domains: dict[str, str] = {}
    per_domain: dict[str, int] = {}
    for email in emails:
        hashed, domain = engine_hash(email), domain_of(email)
        per_address[hashed] = per_address.get(hashed, 0) + count
        domains[hashed] = domain
        per_domain[domain] = per_domain.get(domain, 0) + count
    _upsert_many(
        EngineContribution.__table__,  # type: ignore[arg-type]
        [
            (
                {
                    "account_id": account_id,
                    "address_hash": h,
                    "day": day,
                    "hour": hour,
                    "kind": kind,
                },
                {"count": n},
                {},
                {"domain": domains[h]},
            )
            for h, n in per_address.items()
        ],
    )
    _upsert_many(
        EngineAddress.__table__,  # type: ignore[arg-type]
        [
            ({"address_hash": h}, {column: n}, latest, {"domain": domains[h]})
            for h, n in per_address.items()
        ],
    )
    if kind in ENGAGEMENTS:
        _upsert_many(
            EngineAddressHour.__table__,  # type: ignore[arg-type]
            [
                ({"address_hash": h, "hour": hour}, {"engagements": n}, {}, {})
                for h, n in per_address.items()
            ],
        )
    _upsert_many(
        EngineDomainDay.__table__,  # type: ignore[arg-type]
        [({"domain": d, "day": day}, {column: n}, {}, {}) for d, n in per_domain.items()],
    )
    db.session.flush()


# --- recomputing ---------------------------------------------------------------------------


def _sum_of(kind: str) -> ColumnElement[Any]:
    return func.coalesce(
        func.sum(case((EngineContribution.kind == kind, EngineContribution.count), else_=0)), 0
    )


def _last_day_of(kind: str) -> ColumnElement[Any]:
    return func.max(case((EngineContribution.kind == kind, EngineContribution.day), else_=None))


def _rebuild_addresses(hashes: Sequence[str] | None) -> None:
    """Recompute the learned address rows (all, or those of ``hashes``) from the ledger."""
    c = EngineContribution
    chunks: Iterable[Sequence[str] | None] = (
        [None]
        if hashes is None
        else [hashes[i : i + _CHUNK] for i in range(0, len(hashes), _CHUNK)]
    )
    for chunk in chunks:
        if chunk is None:
            db.session.execute(delete(EngineAddress))
            db.session.execute(delete(EngineAddressHour))
        else:
            db.session.execute(delete(EngineAddress).where(EngineAddress.address_hash.in_(chunk)))
            db.session.execute(
                delete(EngineAddressHour).where(EngineAddressHour.address_hash.in_(chunk))
            )
        address_rows = select(
            c.address_hash,
            func.min(c.domain),
            *(_sum_of(kind) for kind in KINDS),
            _last_day_of("delivered"),
            _last_day_of("bounced"),
        ).group_by(c.address_hash)
        hour_rows = (
            select(c.address_hash, c.hour, func.sum(c.count))
            .where(c.kind.in_(ENGAGEMENTS))
            .group_by(c.address_hash, c.hour)
        )
        if chunk is not None:
            address_rows = address_rows.where(c.address_hash.in_(chunk))
            hour_rows = hour_rows.where(c.address_hash.in_(chunk))
        db.session.execute(
            insert(EngineAddress).from_select(
                [
                    "address_hash",
                    "domain",
                    *(COLUMN_OF_KIND[kind] for kind in KINDS),
                    "last_delivered_on",
                    "last_bounced_on",
                ],
                address_rows,
            )
        )
        db.session.execute(
            insert(EngineAddressHour).from_select(
                ["address_hash", "hour", "engagements"], hour_rows
            )
        )


def _rebuild_domain_days(pairs: Sequence[tuple[str, date]] | None) -> None:
    """Recompute the domain-day rows (all, or those of ``pairs``) from the ledger."""
    c = EngineContribution
    chunks: Iterable[Sequence[tuple[str, date]] | None] = (
        [None] if pairs is None else [pairs[i : i + _CHUNK] for i in range(0, len(pairs), _CHUNK)]
    )
    for chunk in chunks:
        rows = select(c.domain, c.day, *(_sum_of(kind) for kind in KINDS)).group_by(c.domain, c.day)
        if chunk is None:
            db.session.execute(delete(EngineDomainDay))
        else:
            key = tuple_(EngineDomainDay.domain, EngineDomainDay.day)
            db.session.execute(delete(EngineDomainDay).where(key.in_(list(chunk))))
            rows = rows.where(tuple_(c.domain, c.day).in_(list(chunk)))
        db.session.execute(
            insert(EngineDomainDay).from_select(
                ["domain", "day", *(COLUMN_OF_KIND[kind] for kind in KINDS)], rows
            )
        )


def _remove(where: ColumnElement[bool]) -> int:
    """Delete the ledger rows matching ``where`` and recompute every learned row they fed."""
    c = EngineContribution
    hashes = list(db.session.scalars(select(c.address_hash).where(where).distinct()))
    pairs = [
        (domain, day)
        for domain, day in db.session.execute(select(c.domain, c.day).where(where).distinct())
    ]
    removed = db.session.scalar(select(func.count()).select_from(c).where(where)) or 0
    db.session.execute(delete(c).where(where))
    _rebuild_addresses(hashes)
    _rebuild_domain_days(pairs)
    db.session.flush()
    return int(removed)


def remove_account_contributions(account_id: int) -> int:
    """Remove everything ``account_id`` contributed and recompute its effect away. No commit."""
    return _remove(EngineContribution.account_id == account_id)


def remove_address(email: str, account_id: int | None = None) -> int:
    """Remove what the engine holds about ``email`` (from one account, or from all). No commit."""
    where = EngineContribution.address_hash == engine_hash(email)
    if account_id is not None:
        where = where & (EngineContribution.account_id == account_id)
    return _remove(where)


def contribution_count(account_id: int) -> int:
    """How many ledger rows come from the account (0 after an opt-out has been processed)."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(EngineContribution)
            .where(EngineContribution.account_id == account_id)
        )
        or 0
    )


def maintain() -> None:
    """Maintenance: drop contributions of accounts that do not take part and those past
    ENGINE_RETENTION_DAYS, then rebuild every learned table from the ledger. Idempotent."""
    from accounts.models import Account

    left = select(Account.id).where(Account.engine_participation.is_(False))
    db.session.execute(delete(EngineContribution).where(EngineContribution.account_id.in_(left)))
    oldest = utcnow().date() - timedelta(days=int(setting("ENGINE_RETENTION_DAYS")))
    db.session.execute(delete(EngineContribution).where(EngineContribution.day < oldest))
    _rebuild_addresses(None)
    _rebuild_domain_days(None)
    db.session.flush()
