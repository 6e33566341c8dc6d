"""The first half of an import: read the CSV and check every row, with no database.

It runs in a helper process during large imports (so checking and writing use both cores) or
inline for small ones; the result is the same. It imports nothing heavy (no Flask, no
SQLAlchemy), so the helper process starts quickly and stays small.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from subscribers.normalise import normalise_email

BATCH_ROWS = 2000


@dataclass
class Columns:
    email: int
    name: int | None
    attributes: list[tuple[int, str]]


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
    ``email``, ``name``, ``attribute`` or ``ignore``."""
    email = name = None
    attributes = []
    for index, column in enumerate(header):
        target = mapping.get(str(index), "ignore")
        if target == "email":
            email = index
        elif target == "name":
            name = index
        elif target == "attribute":
            attributes.append((index, column.strip()[:64] or f"column_{index + 1}"))
    if email is None:
        raise ValidationError("Map one column to the email address.", field="mapping")
    return Columns(email, name, attributes)


def open_csv(path: str) -> tuple[io.BufferedReader, Iterator[list[str]]]:
    """The binary file (its position is the progress) and a row reader over it.

    UTF-8 (with or without BOM); undecodable bytes become U+FFFD so the row is reported, not
    lost silently.
    """
    binary = open(path, "rb")  # noqa: SIM115 - closed by the caller
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
    return binary, csv.reader(text)


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


def keyed_hash(key: bytes, address: str) -> str:
    """The suppression hash of an address (the same as ``suppression.address_hash``)."""
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def checked_batches(
    path: str,
    mapping: dict[str, str],
    blocked: frozenset[str],
    hash_key: bytes,
    part: int = 0,
    parts: int = 1,
) -> Iterator[CheckedBatch]:
    """Read the file in batches: validate and normalise each address, drop repeats within a
    batch, refuse blocked domains, hash the rest for the suppression check.

    With ``parts`` > 1 only batches ``part``, ``part + parts``, ... are checked and yielded
    (the others are only read past), so several processes can share the work."""
    binary, reader = open_csv(path)
    with binary:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ValidationError("The file is empty or has no header row.")
        columns = columns_of(header, mapping)
        rows = 0
        index = 0
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                if index % parts == part:
                    yield _check(batch, rows, columns, blocked, hash_key, binary.tell())
                rows += len(batch)
                index += 1
                batch = []
        if batch and index % parts == part:
            yield _check(batch, rows, columns, blocked, hash_key, binary.tell())


def _check(
    batch: list[list[str]],
    rows_before: int,
    columns: Columns,
    blocked: frozenset[str],
    hash_key: bytes,
    position: int,
) -> CheckedBatch:
    problems: list[tuple[int, str, str, str]] = []
    valid: dict[str, tuple[int, str, str, str | None, dict[str, str]]] = {}
    email_index = columns.email
    for offset, row in enumerate(batch):
        number = rows_before + offset + 2  # the header is row 1
        if not row or (len(row) == 1 and not row[0].strip()):
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
        if columns.name is not None and len(row) > columns.name:
            name = row[columns.name].strip()[:200]
        attributes = {
            key: row[index].strip()
            for index, key in columns.attributes
            if len(row) > index and row[index].strip()
        }
        valid[address] = (number, address, keyed_hash(hash_key, address), name, attributes)
    return CheckedBatch(position, rows_before + len(batch), problems, list(valid.values()))


def produce(
    path: str,
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
        for checked in checked_batches(path, mapping, blocked, hash_key, part, parts):
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
