"""The first half of an import: read the CSV and check every row, with no database.

It runs in a helper process during large imports (so checking and writing use both cores) or
inline for small ones; the result is the same. It imports nothing heavy (no Flask, no
SQLAlchemy), so the helper process starts quickly and stays small.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from subscribers.csvformat import Format, field_too_long, open_rows
from subscribers.hashing import address_hash_with
from subscribers.normalise import normalise_email

BATCH_ROWS = 2000


@dataclass
class Columns:
    email: int
    name: int | None
    attributes: list[tuple[int, str]]
    # The first-name and last-name columns (either may be missing), joined into the name.
    name_parts: tuple[int, ...] = ()


@dataclass
class CheckedBatch:
    """One batch of rows after checking: what goes to the report and what to the database."""

    position: int  # bytes of the file read so far (the progress)
    rows: int  # data rows read so far
    # (row number, email as given or normalised, problem, detail)
    problems: list[tuple[int, str, str, str]]
    # (row number, normalised address, keyed hash, name or None, attributes)
    valid: list[tuple[int, str, str, str | None, dict[str, str]]]


def columns_of(header: list[str], mapping: dict[str, str]) -> Columns:
    """Where the email, name and attribute columns are, from a mapping of column index to
    ``email``, ``name``, ``first_name``, ``last_name``, ``attribute`` or ``ignore``."""
    email = name = first = last = None
    attributes = []
    for index, column in enumerate(header):
        target = mapping.get(str(index), "ignore")
        if target == "email":
            email = index
        elif target == "name":
            name = index
        elif target == "first_name":
            first = index
        elif target == "last_name":
            last = index
        elif target == "attribute":
            attributes.append((index, column.strip()[:64] or f"column_{index + 1}"))
    if email is None:
        raise ValidationError("Map one column to the email address.", field="mapping")
    parts = tuple(index for index in (first, last) if index is not None)
    return Columns(email, name, attributes, parts)


def open_csv(path: str, fmt: Format | None = None) -> tuple[io.BufferedReader, Iterator[list[str]]]:
    """The binary file (its position is the progress) and the importer's row reader over it
    (:func:`subscribers.csvformat.open_rows`; UTF-8 and commas unless told)."""
    binary, _, reader = open_rows(path, fmt or Format())
    return binary, reader


def blocked_domain(address: str, blocked: frozenset[str]) -> str | None:
    """The blocked domain covering ``address`` (its domain or a parent of it), or None."""
    if not blocked:
        return None
    labels = address.rpartition("@")[2].lower().split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in blocked:
            return candidate
    return None


#: The suppression hash of an address under a key the caller holds (the helper processes).
keyed_hash = address_hash_with


def checked_batches(
    path: str,
    fmt: Format,
    mapping: dict[str, str],
    blocked: frozenset[str],
    hash_key: bytes,
    part: int = 0,
    parts: int = 1,
) -> Iterator[CheckedBatch]:
    """Read the file in batches: validate and normalise each address, drop repeats within a
    batch, refuse blocked domains, hash the rest for the suppression check. Rows that cannot
    be read (a line or field over the limit, a NUL byte, undecodable bytes) are refused with
    the reason; reading carries on with the next row.

    With ``parts`` > 1 only batches ``part``, ``part + parts``, ... are checked and yielded
    (the others are only read past), so several processes can share the work."""
    binary, lines, reader = open_rows(path, fmt)
    with binary:
        try:
            header = next(reader, None)
        except csv.Error:
            header = None
        if header is None or not any(cell.strip() for cell in header):
            raise ValidationError("The file is empty or has no header row.")
        columns = columns_of(header, mapping)
        rows = 0
        index = 0
        batch: list[list[str]] = []
        # Rows that could not be read, by their place in the batch: (email as far as
        # readable, problem, detail). They enter the batch as empty rows.
        refused: dict[int, tuple[str, str, str]] = {}
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                refused[len(batch)] = ("", *field_too_long())
                lines.refused = None
                row = []
            else:
                if lines.refused is not None:
                    refused[len(batch)] = (_readable_email(row, columns.email), *lines.refused)
                    lines.refused = None
                    row = []
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                if index % parts == part:
                    yield _check(batch, refused, rows, columns, blocked, hash_key, binary.tell())
                rows += len(batch)
                index += 1
                batch = []
                refused = {}
        if batch and index % parts == part:
            yield _check(batch, refused, rows, columns, blocked, hash_key, binary.tell())


def _readable_email(row: list[str], index: int) -> str:
    return row[index].replace("\x00", "").strip()[:320] if len(row) > index else ""


def _check(
    batch: list[list[str]],
    refused: dict[int, tuple[str, str, str]],
    rows_before: int,
    columns: Columns,
    blocked: frozenset[str],
    hash_key: bytes,
    position: int,
) -> CheckedBatch:
    problems: list[tuple[int, str, str, str]] = []
    valid: dict[str, tuple[int, str, str, str | None, dict[str, str]]] = {}
    email_index = columns.email
    name_index = columns.name
    name_parts = columns.name_parts
    for offset, row in enumerate(batch):
        number = rows_before + offset + 2  # the header is row 1
        if not row or (len(row) == 1 and not row[0].strip()):
            if offset in refused:
                problems.append((number, *refused[offset]))
            continue  # a blank line is no contact and no error
        raw = row[email_index] if len(row) > email_index else ""
        try:
            address = normalise_email(raw)
        except ValidationError as exc:
            problems.append((number, raw[:320], "invalid address", exc.message[:300]))
            continue
        if address in valid:
            problems.append((number, address, "duplicate", "the address is earlier in the file"))
            continue
        domain = blocked_domain(address, blocked)
        if domain is not None:
            problems.append((number, address, "blocked", f"the domain {domain} is blocked"))
            continue
        name = None
        if name_index is not None:
            if len(row) > name_index:
                name = row[name_index].strip()[:200]
        elif name_parts:
            name = " ".join(
                part for part in (row[i].strip() for i in name_parts if len(row) > i) if part
            )[:200]
        attributes = {
            key: row[index].strip()
            for index, key in columns.attributes
            if len(row) > index and row[index].strip()
        }
        valid[address] = (number, address, keyed_hash(hash_key, address), name, attributes)
    return CheckedBatch(position, rows_before + len(batch), problems, list(valid.values()))


def produce(
    path: str,
    fmt: Format,
    mapping: dict[str, str],
    blocked: frozenset[str],
    hash_key: bytes,
    out: Any,
    part: int = 0,
    parts: int = 1,
) -> None:
    """Helper-process entry point: put each checked batch on ``out``, then ``("done", peak
    RSS in KiB)`` (or, on a refusal, the message as a string)."""
    try:
        for checked in checked_batches(path, fmt, mapping, blocked, hash_key, part, parts):
            out.put(checked)
    except ValidationError as exc:
        out.put(exc.message)
        return
    except Exception as exc:  # reported to the importing process, which fails the job
        out.put(f"The file could not be read: {type(exc).__name__}")
        return
    out.put(("done", peak_rss_kb()))


def peak_rss_kb() -> int:
    """This process's own peak resident memory since it started (VmHWM), in KiB; 0 if unknown.

    Unlike ``ru_maxrss`` it is not inherited across fork and exec, so it measures the helper
    alone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
