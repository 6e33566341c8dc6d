"""Exports of a list or a segment as CSV or JSON, streamed row by row.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
or a tab or carriage return that some spreadsheets skip before those) get a leading ``'``, so
they are shown as text (OWASP "CSV injection"). JSON is data for programs, not a spreadsheet:
its values are exported exactly as held.

Exporting is processing: contacts that :func:`privacy.policy.may_process` keeps out (processing
restricted, objecting, consent withdrawn) are never in an export.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Text, cast, func, select

from core import db
from privacy import policy
from subscribers import queries, services
from subscribers.models import Contact, Subscription

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ("email", "name", "status", "source", "created_at", "attributes")


#: A string as JSON with ``ensure_ascii=False``: what json.dumps writes for one.
_string = json.encoder.encode_basestring


def neutralise(value: str) -> str:
    """A cell value a spreadsheet shows as text: formula-like values get a leading quote."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


#: Rows read per query: keyset pages, so memory stays flat and no server-side cursor is held.
PAGE_ROWS = 5000
#: Distinct attribute texts whose exported form is remembered during one export.
ATTRIBUTE_FORMS = 4096
# The attributes as their stored JSON text: each distinct text is parsed and written out once
# per export (attributes repeat: cities, plans), not once per row.
_FIELDS = (
    Contact.id,
    Contact.email,
    Contact.name,
    Contact.source,
    Contact.created_at,
    cast(Contact.attributes, Text),
)


def _list_rows(account_id: int, list_id: int, after: int | None = None) -> Any:
    """The list's exportable rows (plain columns, no ORM objects: 6x faster at a million),
    in id order; ``after``: only ids above it, bound on both sides of the join so each page
    reads only its own index range. NotFoundError for another account's list."""
    if after is None:
        services.get_list(account_id, list_id)
    query = (
        select(*_FIELDS, Subscription.status)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(
            Contact.account_id == account_id,
            Subscription.list_id == list_id,
            policy.may_process_condition(Contact),
        )
        .order_by(Contact.id)
    )
    if after is not None:
        query = query.where(Contact.id > after, Subscription.contact_id > after)
    return query


def _segment_rows(account_id: int, segment_id: int, after: int | None = None) -> Any:
    segment = services.get_segment(account_id, segment_id)
    matching = queries.segment_contacts(account_id, segment)
    query = (
        matching.with_only_columns(*_FIELDS)
        .where(policy.may_process_condition(Contact))
        .order_by(Contact.id)
    )
    if after is not None:
        query = query.where(Contact.id > after)
    return query


def _pages(account_id: int, kind: str, object_id: int) -> Iterator[Sequence[Any]]:
    """The exportable rows in id order, a page at a time: (id, email, name, source,
    created_at, attributes as JSON text[, status])."""
    rows_after = _list_rows if kind == "list" else _segment_rows
    rows_after(account_id, object_id)  # ownership first (NotFoundError)
    last_id = 0
    while True:
        rows = db.session.execute(rows_after(account_id, object_id, last_id).limit(PAGE_ROWS)).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield rows


#: Rows per chunk streamed: a page's text at once would hold megabytes (4 bytes a character
#: once one is beyond Latin-1).
CHUNK_ROWS = 500


def _chunks(first: Sequence[Any] | None, pages: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """The rows of ``first`` and then of ``pages``, CHUNK_ROWS at a time."""
    for rows in itertools.chain((first,) if first is not None else (), pages):
        for start in range(0, len(rows), CHUNK_ROWS):
            yield rows[start : start + CHUNK_ROWS]


def _attributes(text: str | None) -> Any:
    return json.loads(text) if text else None


def _record_export(
    account_id: int, kind: str, object_id: int, fmt: str, actor_user_id: int | None
) -> None:
    """Record the export in the account's security log: which list or segment, the format
    and how many rows; never the addresses. Commits."""
    from accounts.audit import record_security_event
    from accounts.models import SecurityEventKind

    query = (
        _list_rows(account_id, object_id)
        if kind == "list"
        else _segment_rows(account_id, object_id)
    )
    rows = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.CONTACTS_EXPORTED,
        {f"{kind}_id": object_id, "format": fmt, "rows": int(rows or 0)},
    )
    db.session.commit()


def export_csv(
    account_id: int, kind: str, object_id: int, actor_user_id: int | None = None
) -> Iterator[str]:
    """CSV text of a list (``kind="list"``) or segment, in chunks; formulas neutralised.

    The account's ownership is checked before the first chunk (NotFoundError otherwise), and
    the export is recorded in the security log (list or segment id, row count; no address)."""
    pages = _pages(account_id, kind, object_id)
    first = next(pages, None)
    _record_export(account_id, kind, object_id, "csv", actor_user_id)
    listed = kind == "list"  # rows have a status

    @functools.lru_cache(maxsize=ATTRIBUTE_FORMS)
    def attributes_cell(text: str | None) -> str:
        attributes = _attributes(text) or {}
        return neutralise(json.dumps(attributes, ensure_ascii=False, sort_keys=True))

    def cells(row: Any) -> tuple[str, ...]:
        # created_at (an ISO date) never starts with a formula character, so only the
        # other cells are neutralised; status is "" for a segment.
        return (
            neutralise(row[1]),
            neutralise(row[2]),
            neutralise(str(row[6])) if listed else "",
            neutralise(row[3]),
            row[4].isoformat(timespec="seconds"),
            attributes_cell(row[5]),
        )

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for rows in _chunks(first, pages):
            writer.writerows(map(cells, rows))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if first is None:
            yield buffer.getvalue()

    return generate()


def export_json(
    account_id: int, kind: str, object_id: int, actor_user_id: int | None = None
) -> Iterator[str]:
    """A JSON array of the list's or segment's contacts, in chunks (ownership checked first;
    recorded in the security log like :func:`export_csv`)."""
    pages = _pages(account_id, kind, object_id)
    first = next(pages, None)
    _record_export(account_id, kind, object_id, "json", actor_user_id)
    listed = kind == "list"  # rows have a status

    @functools.lru_cache(maxsize=ATTRIBUTE_FORMS)
    def attributes_json(text: str | None) -> str:
        return json.dumps(_attributes(text) or {}, ensure_ascii=False)

    def item(row: Any) -> str:
        # Written piece by piece as json.dumps(dict, ensure_ascii=False) writes the whole
        # record: the same separators and string escapes, the attributes' text from the cache.
        status = _string(row[6]) if listed else '""'
        return (
            f'{{"email": {_string(row[1])}, "name": {_string(row[2])}, "status": {status}, '
            f'"source": {_string(row[3])}, "created_at": '
            f'"{row[4].isoformat(timespec="seconds")}", "attributes": {attributes_json(row[5])}}}'
        )

    def generate() -> Iterator[str]:
        if first is None:
            yield "[]\n"
            return
        head = "[\n"
        for rows in _chunks(first, pages):
            yield head + ",\n".join(map(item, rows))
            head = ",\n"
        yield "\n]\n"

    return generate()
