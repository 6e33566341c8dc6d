"""Running a CSV import: streamed, in batches, with a per-row error report.

The file is read row by row (never whole). :mod:`subscribers.csvcheck` validates every address
with the same :func:`normalise_email` as every other entry point, drops repeats and blocked
domains and hashes the rest; for files over ``IMPORT_HELPER_MIN_BYTES`` it runs in a helper
process, so checking and writing use both cores. This module then checks suppression (keyed
hashes), and writes each batch with a few ``executemany`` statements: new contacts
(``INSERT ... ON CONFLICT DO NOTHING``), updates of existing ones when asked, subscriptions and
consent records. Each batch commits with the job's progress, so the progress bar moves and a
crash loses at most one batch (a re-run finds the rest as existing).

Rows refused go to the error report (a CSV the marketer downloads): unreadable (a line or field
over the limit, a NUL byte, bytes not valid in the file's encoding), invalid address, duplicate
in the file, suppressed (with the reason) or blocked by the platform. A batch the database
refuses is rolled back whole and stops the import with the rows named: never half a batch.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import multiprocessing
import queue
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from flask import current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from core import db
from core.db import utcnow
from core.errors import ValidationError
from subscribers import csvcheck
from subscribers.csvcheck import CheckedBatch
from subscribers.csvformat import Format
from subscribers.models import BlockedDomain, ImportJob

log = logging.getLogger(__name__)

REPORT_HEADER = ("row", "email", "problem", "detail")
SQLITE_CACHE_KIB = 32 * 1024
#: What the database raises for a value it will not store: the batch is rolled back and the
#: import stops with the rows named (anything else, such as a lost connection, propagates).
DATA_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.DataError,
    sqlite3.IntegrityError,
    psycopg.DataError,
    psycopg.IntegrityError,
    sa_exc.DataError,
    sa_exc.IntegrityError,
)
#: Peak resident memory of the last import's helper process, in KiB (bench/import_bench.py).
last_helper_peak_kb = 0


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0


def _format(job: ImportJob) -> Format:
    return Format(job.encoding, job.delimiter)


def _inline(job: ImportJob, blocked: frozenset[str], key: bytes) -> Iterator[CheckedBatch]:
    yield from csvcheck.checked_batches(
        job.stored_path, _format(job), dict(job.mapping), blocked, key
    )


def _from_helper(
    job: ImportJob, blocked: frozenset[str], key: bytes, parts: int
) -> Iterator[CheckedBatch]:
    """Checked batches from ``parts`` helper processes, in file order: helper ``k`` checks
    batches ``k``, ``k + parts``, ... (bounded queues: memory stays flat)."""
    context = multiprocessing.get_context("spawn")
    queues: list[Any] = [context.Queue(maxsize=6) for _ in range(parts)]
    helpers = [
        context.Process(
            target=csvcheck.produce,
            args=(
                job.stored_path,
                _format(job),
                dict(job.mapping),
                blocked,
                key,
                queues[part],
                part,
                parts,
            ),
            daemon=True,
        )
        for part in range(parts)
    ]
    try:
        for helper in helpers:
            helper.start()
    except (AssertionError, OSError):
        log.warning("no helper process for import %s; checking inline", job.id)
        for helper in helpers:
            if helper.is_alive():
                helper.terminate()
        yield from _inline(job, blocked, key)
        return
    global last_helper_peak_kb
    last_helper_peak_kb = 0
    received = 0
    item: Any
    try:
        while True:
            turn = received % parts
            try:
                item = queues[turn].get(timeout=5)
            except queue.Empty:
                if helpers[turn].is_alive():
                    continue
                if received:
                    raise RuntimeError("an import helper process stopped") from None
                log.warning("the helpers of import %s did not start; checking inline", job.id)
                yield from _inline(job, blocked, key)
                return
            if isinstance(item, tuple):  # ("done", the helper's peak RSS in KiB): no more
                last_helper_peak_kb = max(last_helper_peak_kb, int(item[1]))
                break
            if isinstance(item, str):
                raise ValidationError(item)
            received += 1
            yield item
        for other in range(parts):  # the others' "done" carries their peak memory
            if other == received % parts:
                continue
            with contextlib.suppress(queue.Empty):
                last = queues[other].get(timeout=2)
                if isinstance(last, tuple):
                    last_helper_peak_kb = max(last_helper_peak_kb, int(last[1]))
    finally:
        for helper in helpers:
            if helper.is_alive():
                helper.terminate()
            helper.join(timeout=10)
        for out in queues:
            out.close()


def run(job: ImportJob) -> None:
    """Import the job's file into its list; the job row carries progress and the outcome."""
    blocked = frozenset(db.session.scalars(select(BlockedDomain.domain)))
    key = str(current_app.config["ADDRESS_HASH_KEY"]).encode()
    threshold = int(current_app.config["IMPORT_HELPER_MIN_BYTES"])
    parts = max(1, int(current_app.config["IMPORT_HELPERS"]))
    batches = (
        _from_helper(job, blocked, key, parts)
        if job.total_bytes >= threshold
        else _inline(job, blocked, key)
    )
    detail = f"import #{job.id} of {job.filename}"[:200]
    counts = _Counts()
    rows_before = 0
    assert job.started_at is not None
    with open(job.report_path, "w", encoding="utf-8", newline="") as report_file:
        report = csv.writer(report_file)
        report.writerow(REPORT_HEADER)
        for checked in batches:
            # Each batch is written whole or not at all; its report lines follow its commit.
            lines: list[tuple[Any, ...]] = []
            try:
                _write_batch(job, checked, counts, lines, detail)
                job.processed_bytes = checked.position
                job.rows_read = checked.rows
                job.created_count = counts.created
                job.updated_count = counts.updated
                job.skipped_count = counts.unchanged
                job.error_count = counts.errors
                db.session.commit()
            except DATA_ERRORS as exc:
                db.session.rollback()
                raise ValidationError(
                    f"The database refused rows {rows_before + 2:,} to {checked.rows + 1:,}"
                    f" ({type(exc).__name__}). None of them was imported, nor any row after"
                    " them; the rows before them were."
                ) from exc
            rows_before = checked.rows
            report.writerows(lines)
            report_file.flush()
    job.processed_bytes = job.total_bytes
    db.session.commit()


def _write_batch(
    job: ImportJob,
    checked: CheckedBatch,
    counts: _Counts,
    report: list[tuple[Any, ...]],
    detail: str,
) -> None:
    account_id = job.account_id
    report.extend(checked.problems)
    counts.errors += len(checked.problems)
    valid = {address: (number, name, attrs) for number, address, _, name, attrs in checked.valid}
    if not valid:
        return
    hashes = {hashed: address for _, address, hashed, _, _ in checked.valid}
    writer = _Writer()
    for hashed, reason in writer.suppressed(account_id, list(hashes)).items():
        address = hashes[hashed]
        kind = "blocked" if reason == "blocked" else "suppressed"
        report.append((valid[address][0], address, kind, reason.replace("_", " ")))
        counts.errors += 1
        del valid[address]
    if not valid:
        return
    assert job.started_at is not None
    now = utcnow()
    # Insert first: the unique index finds the addresses already held (usually none), so
    # only those need reading back, not every address of the batch.
    hash_of = {address: hashed for _, address, hashed, _, _ in checked.valid}
    created = writer.insert_contacts(
        account_id,
        [
            (address, hash_of[address], name or "", attributes)
            for address, (_, name, attributes) in valid.items()
        ],
        now,
    )
    counts.created += len(created)
    contact_ids: list[int] = list(created.values())
    held = [address for address in valid if address not in created]
    existing = writer.existing_contacts(account_id, held, job.started_at) if held else {}
    for address, (_, _, _, created_by_this_import) in list(existing.items()):
        if created_by_this_import:  # an earlier batch of this file had the address
            report.append(
                (valid[address][0], address, "duplicate", "the address is earlier in the file")
            )
            counts.errors += 1
            del existing[address]
    contact_ids.extend(cid for cid, _, _, _ in existing.values())
    if existing:
        if job.update_existing:
            changes = []
            for address, (cid, old_name, old_attrs, _) in existing.items():
                _, name, attributes = valid[address]
                merged = {**old_attrs, **attributes}
                new_name = name if name else old_name
                if new_name != old_name or merged != old_attrs:
                    changes.append((cid, new_name, merged))
            if changes:
                writer.update_contacts(changes, now)
            counts.updated += len(changes)
            counts.unchanged += len(existing) - len(changes)
        else:
            counts.unchanged += len(existing)
    if job.list_id is None:
        return
    on_list = writer.subscribed_already(job.list_id, [v[0] for v in existing.values()])
    to_subscribe = [cid for cid in contact_ids if cid not in on_list]
    if to_subscribe:
        writer.insert_subscriptions(job.list_id, to_subscribe, now)
        writer.insert_consent(account_id, job.list_id, to_subscribe, detail, now)


def pg_array(values: list[Any]) -> str:
    """A PostgreSQL array literal of ``values`` (ints, or strings quoted and escaped).

    Passed as one text parameter and cast in SQL (``?::text[]``): the driver's list adapter
    costs more per element than the database's insert of the row.
    """
    if values and isinstance(values[0], int):
        return "{" + ",".join(map(str, values)) + "}"
    return (
        "{"
        + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
        + "}"
    )


class _Writer:
    """Batch statements on the session's own connection and transaction (``executemany``
    straight on the driver: the ORM would spend more time per row than the database)."""

    def __init__(self) -> None:
        connection = db.session.connection()
        self.postgres = connection.dialect.name == "postgresql"
        self.dbapi: Any = connection.connection
        if self.postgres:
            # Each batch commits; not waiting for its WAL flush is safe here: a crash loses
            # at most the last batches, which a re-run of the import finds missing and adds.
            self._query_no_result("SET LOCAL synchronous_commit TO OFF", [])
        else:
            # A bigger page cache for this connection (32 MB instead of 2 MB): index pages of
            # a large contacts table stay in memory instead of being re-read for every batch.
            self._query_no_result(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}", [])

    def _sql(self, statement: str) -> str:
        if self.postgres:
            statement = statement.replace("?::text[]", "%s::text[]").replace(
                "?::int[]", "%s::int[]"
            )
            return statement.replace("?::json", "CAST(%s AS JSON)").replace("?", "%s")
        return statement.replace("?::json", "?")

    def _time(self, value: datetime) -> Any:
        return value if self.postgres else value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def _in(self, values: list[Any]) -> str:
        return ", ".join("?" for _ in values)

    def _query(self, statement: str, params: list[Any]) -> list[Any]:
        cursor = self.dbapi.cursor()
        try:
            self._execute(cursor, statement, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.dbapi.cursor()
        try:
            cursor.executemany(self._sql(statement), rows)
        finally:
            cursor.close()

    def _select_in(
        self, select_sql: str, column: str, values: list[Any], params: list[Any]
    ) -> list[Any]:
        """``select_sql`` (ending in WHERE ... AND) with ``column`` in ``values``: one
        ``= ANY(array)`` on PostgreSQL, ``IN (...)`` chunks of 900 on SQLite."""
        if self.postgres:
            kind = "int" if values and isinstance(values[0], int) else "text"
            return self._query(
                f"{select_sql} {column} = ANY(?::{kind}[])", [*params, pg_array(values)]
            )
        rows: list[Any] = []
        for start in range(0, len(values), 900):
            chunk = values[start : start + 900]
            rows.extend(
                self._query(f"{select_sql} {column} IN ({self._in(chunk)})", [*params, *chunk])
            )
        return rows

    def suppressed(self, account_id: int, hashes: list[str]) -> dict[str, str]:
        """Of ``hashes``, those suppressed for the account or platform-wide, with the reason
        (what :func:`subscribers.suppression.suppressed_hashes` answers, in one query)."""
        found: dict[str, str] = {}
        for hashed, reason in self._select_in(
            "SELECT address_hash, reason FROM suppressions"
            " WHERE (account_id = ? OR account_id IS NULL) AND",
            "address_hash",
            hashes,
            [account_id],
        ):
            found.setdefault(hashed, reason)
        return found

    def existing_contacts(
        self, account_id: int, emails: list[str], import_started: datetime
    ) -> dict[str, tuple[int, str, dict[str, Any], bool]]:
        """By address: id, name, attributes, and whether this import created it."""
        found: dict[str, tuple[int, str, dict[str, Any], bool]] = {}
        started = self._time(import_started)
        for cid, email, name, attrs, source, created_at in self._select_in(
            "SELECT id, email, name, attributes, source, created_at FROM contacts"
            " WHERE account_id = ? AND",
            "email",
            emails,
            [account_id],
        ):
            if isinstance(attrs, str):
                attrs = json.loads(attrs)
            mine = source == "import" and created_at >= started
            found[email] = (cid, name, attrs or {}, bool(mine))
        return found

    def _values(
        self, head: str, row_sql: str, rows: list[tuple[Any, ...]], tail: str = ""
    ) -> list[Any]:
        """SQLite: one multi-row ``INSERT ... VALUES (...), (...)`` per 500 rows (fewer
        statements than executemany); returns what RETURNING gives, if anything."""
        returned: list[Any] = []
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            statement = head + ", ".join([row_sql] * len(chunk)) + tail
            params = [value for row in chunk for value in row]
            cursor = self.dbapi.cursor()
            try:
                cursor.execute(statement, params)
                if "RETURNING" in tail:
                    returned.extend(cursor.fetchall())
            finally:
                cursor.close()
        return returned

    def insert_contacts(
        self, account_id: int, rows: list[tuple[str, str, str, dict[str, str]]], now: datetime
    ) -> dict[str, int]:
        """Insert the contacts not held yet, each ``(address, its address hash, name,
        attributes)``; the ids of those inserted, by address (addresses already held are
        skipped by the unique index)."""
        stamp = self._time(now)
        if self.postgres:  # one statement over arrays: short SQL, one round trip
            returned = self._query(
                "INSERT INTO contacts (account_id, email, address_hash, name, attributes, source,"
                " created_at, updated_at) SELECT ?, e, h, n, CAST(a AS JSON), 'import', ?, ?"
                " FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS t(e, h, n, a)"
                " ON CONFLICT (account_id, email) DO NOTHING RETURNING id, email",
                [
                    account_id,
                    stamp,
                    stamp,
                    pg_array([email for email, _, _, _ in rows]),
                    pg_array([hashed for _, hashed, _, _ in rows]),
                    pg_array([name for _, _, name, _ in rows]),
                    pg_array([json.dumps(attrs) for _, _, _, attrs in rows]),
                ],
            )
        else:
            returned = self._values(
                "INSERT INTO contacts (account_id, email, address_hash, name, attributes, source,"
                " created_at, updated_at) VALUES ",
                "(?, ?, ?, ?, ?, 'import', ?, ?)",
                [
                    (account_id, email, hashed, name, json.dumps(attrs), stamp, stamp)
                    for email, hashed, name, attrs in rows
                ],
                " ON CONFLICT (account_id, email) DO NOTHING RETURNING id, email",
            )
        return {email: cid for cid, email in returned}

    def update_contacts(self, rows: list[tuple[int, str, dict[str, Any]]], now: datetime) -> None:
        stamp = self._time(now)
        self._many(
            "UPDATE contacts SET name = ?, attributes = ?::json, updated_at = ? WHERE id = ?",
            [(name, json.dumps(attrs), stamp, cid) for cid, name, attrs in rows],
        )

    def subscribed_already(self, list_id: int, contact_ids: list[int]) -> set[int]:
        if not contact_ids:
            return set()
        return {
            row[0]
            for row in self._select_in(
                "SELECT contact_id FROM subscriptions WHERE list_id = ? AND",
                "contact_id",
                contact_ids,
                [list_id],
            )
        }

    def insert_subscriptions(self, list_id: int, contact_ids: list[int], now: datetime) -> None:
        stamp = self._time(now)
        if self.postgres:
            self._query_no_result(
                "INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)"
                " SELECT ?, c, 'subscribed', ?, ? FROM unnest(?::int[]) AS t(c)"
                " ON CONFLICT (list_id, contact_id) DO NOTHING",
                [list_id, stamp, stamp, pg_array(contact_ids)],
            )
            return
        self._values(
            "INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)"
            " VALUES ",
            "(?, ?, 'subscribed', ?, ?)",
            [(list_id, cid, stamp, stamp) for cid in contact_ids],
            " ON CONFLICT (list_id, contact_id) DO NOTHING",
        )

    def insert_consent(
        self, account_id: int, list_id: int, contact_ids: list[int], detail: str, now: datetime
    ) -> None:
        stamp = self._time(now)
        if self.postgres:
            self._query_no_result(
                "INSERT INTO consent_records (account_id, contact_id, list_id, action, source,"
                " detail, created_at) SELECT ?, c, ?, 'imported', 'import', ?, ?"
                " FROM unnest(?::int[]) AS t(c)",
                [account_id, list_id, detail, stamp, pg_array(contact_ids)],
            )
            return
        self._values(
            "INSERT INTO consent_records (account_id, contact_id, list_id, action, source,"
            " detail, created_at) VALUES ",
            "(?, ?, ?, 'imported', 'import', ?, ?)",
            [(account_id, cid, list_id, detail, stamp) for cid in contact_ids],
        )

    def _query_no_result(self, statement: str, params: list[Any]) -> None:
        cursor = self.dbapi.cursor()
        try:
            self._execute(cursor, statement, params)
        finally:
            cursor.close()

    def _execute(self, cursor: Any, statement: str, params: list[Any]) -> None:
        if self.postgres:
            # Never a server-side prepared statement: its generic plan, made while the table
            # was small, would scan every contact of the account for each batch.
            cursor.execute(self._sql(statement), params, prepare=False)
        else:
            cursor.execute(statement, params)
