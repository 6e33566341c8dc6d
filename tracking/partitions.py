"""Monthly partitions of ``tracking_events`` on PostgreSQL (declarative, RANGE on
``occurred_at``; migration 0323 converted the table). SQLite keeps one table and every
function here does nothing there.

- ``tracking_events_pYYYYMM`` holds the events of one UTC calendar month (naive UTC times,
  from the first instant of the month up to, not including, the next month's).
- ``tracking_events_default`` (the DEFAULT partition) takes any event outside every monthly
  range (a clock far off, or a month the scheduler has not prepared yet), so no hit is ever
  refused for its time. :func:`ensure_partitions` moves such rows into their month's
  partition when it creates it.
- The scheduler job ``tracking-partitions`` (:func:`ensure_partitions`) keeps the current
  month and :data:`MONTHS_AHEAD` following ones created.
- Retention (:func:`tracking.services.apply_event_retention`) drops a whole month once it is
  older than every account's retention (:func:`drop_expired_partitions`), and deletes by row
  only in the month that is partly expired, and for accounts that keep events for less time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core import db

log = logging.getLogger(__name__)

PARENT = "tracking_events"
DEFAULT_PARTITION = f"{PARENT}_default"
#: Months created ahead of the current one.
MONTHS_AHEAD = 3
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})(\d{{2}})$")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime  # first instant inside
    end: datetime  # first instant after


def month_start(when: date | datetime) -> datetime:
    return datetime(when.year, when.month, 1)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1)


def partition_for(start: datetime) -> Partition:
    """The monthly partition holding ``start``'s month."""
    first = month_start(start)
    return Partition(f"{PARENT}_p{first.year:04d}{first.month:02d}", first, next_month(first))


def is_partitioned() -> bool:
    """Whether the database's ``tracking_events`` is a partitioned table (PostgreSQL)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return False
    found = db.session.execute(
        text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = :parent AND c.relnamespace = to_regnamespace(current_schema())"
        ),
        {"parent": PARENT},
    ).first()
    return found is not None


def monthly_partitions() -> list[Partition]:
    """The monthly partitions that exist, oldest first (the DEFAULT partition is not one)."""
    names = db.session.scalars(
        text(
            "SELECT child.relname FROM pg_inherits i "
            "JOIN pg_class parent ON parent.oid = i.inhparent "
            "JOIN pg_class child ON child.oid = i.inhrelid "
            "WHERE parent.relname = :parent "
            "AND parent.relnamespace = to_regnamespace(current_schema())"
        ),
        {"parent": PARENT},
    ).all()
    found = []
    for name in names:
        match = _NAME.match(str(name))
        if match:
            found.append(partition_for(datetime(int(match[1]), int(match[2]), 1)))
    return sorted(found, key=lambda p: p.start)


def create_partition(partition: Partition) -> None:
    """Create one monthly partition, moving into it the rows the DEFAULT partition holds for
    its month (PostgreSQL refuses a new range that rows of the DEFAULT partition fall in)."""
    bounds = {"start": partition.start, "end": partition.end}
    db.session.execute(
        text(
            f'CREATE TABLE "{partition.name}" '
            f"(LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
    )
    db.session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 - fixed names
            "WHERE occurred_at >= :start AND occurred_at < :end RETURNING *) "
            f'INSERT INTO "{partition.name}" SELECT * FROM moved'
        ),
        bounds,
    )
    # The bounds are literals in DDL (no parameters there); they are dates we formatted.
    db.session.execute(
        text(
            f'ALTER TABLE {PARENT} ATTACH PARTITION "{partition.name}" '
            f"FOR VALUES FROM ('{partition.start.isoformat(sep=' ')}') "
            f"TO ('{partition.end.isoformat(sep=' ')}')"
        )
    )


def ensure_partitions(now: datetime) -> int:
    """Scheduler job: create the partitions of this month and the :data:`MONTHS_AHEAD` next
    ones that do not exist yet; return how many were created. Commits. Safe to run twice or
    in two processes (the second waits on the first's lock, then finds them made)."""
    if not is_partitioned():
        return 0
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('tracking-partitions'))"))
    existing = {p.name for p in monthly_partitions()}
    created = 0
    start = month_start(now)
    for _ in range(MONTHS_AHEAD + 1):
        partition = partition_for(start)
        if partition.name not in existing:
            create_partition(partition)
            created += 1
        start = partition.end
    db.session.commit()
    if created:
        log.info("created %d tracking_events partitions", created)
    return created


def drop_expired_partitions(cutoff: datetime) -> int:
    """Drop every monthly partition whose events are all older than ``cutoff`` (the oldest
    time any account still keeps); return how many events went with them. Commits each drop.
    A short lock timeout keeps a busy ingest from being held up: a drop that cannot get its
    lock is retried at the next run, and the rows are deleted by row meanwhile."""
    if not is_partitioned():
        return 0
    dropped = 0
    for partition in monthly_partitions():
        if partition.end > cutoff:
            break
        rows = int(
            db.session.scalar(text(f'SELECT count(*) FROM "{partition.name}"'))  # noqa: S608
            or 0
        )
        try:
            db.session.execute(text("SET LOCAL lock_timeout = '5s'"))
            db.session.execute(text(f'DROP TABLE "{partition.name}"'))
            db.session.commit()
        except OperationalError as exc:  # the lock not granted in time; tried next run
            db.session.rollback()
            log.warning("could not drop %s yet: %s", partition.name, type(exc).__name__)
            continue
        dropped += rows
    return dropped
