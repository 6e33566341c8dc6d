"""Time zones: every stored time is naive UTC; an account sees and enters times in its own zone.

An account's zone is an IANA name (``Europe/Berlin``), validated against the zone database
(the system's, or the ``tzdata`` package where the system has none). This module converts
between the two and formats times for people; ``init_app`` registers the Jinja filters
``localtime`` and ``localdate`` and the global ``time_zone()``, which use the signed-in
member's account zone unless a zone is passed.

Wall-clock times that a DST change makes odd are handled one way everywhere:
a time in a spring-forward gap does not exist (``NonexistentLocalTimeError`` says which hours
are skipped); a time that happens twice in a fall-back resolves to its first occurrence and
says so (``ResolvedTime.ambiguous``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Flask, g, has_request_context

DEFAULT_ZONE = "UTC"
# Names the zone database ships that are no place a person lives in.
_NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name a person may choose, sorted."""
    return tuple(sorted(available_timezones() - _NOT_PLACES))


@functools.cache
def _zone_set() -> frozenset[str]:
    return frozenset(zone_names())


def is_valid_zone(name: str | None) -> bool:
    """True when ``name`` is an IANA zone name of :func:`zone_names` (exact spelling)."""
    return bool(name) and name in _zone_set()


def zone_label(name: str) -> str:
    """A zone name as people read it: "America/New York" for ``America/New_York``."""
    return name.replace("_", " ")


def clean_zone(name: str | None) -> str:
    """``name`` if it is a valid zone, else UTC (for input that may be absent or forged)."""
    name = (name or "").strip()
    return name if is_valid_zone(name) else DEFAULT_ZONE


@functools.cache
def get_zone(name: str | None) -> tzinfo:
    """The zone called ``name``; UTC for an unknown or empty name (never raises)."""
    if not is_valid_zone(name):
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def to_local(value: datetime, zone: str | None) -> datetime:
    """The aware local time in ``zone`` of ``value`` (naive values are UTC, as stored)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(get_zone(zone))


def to_utc(value: datetime) -> datetime:
    """``value`` (aware) as the naive UTC datetime the tables store."""
    return value.astimezone(UTC).replace(tzinfo=None)


def abbreviation(local: datetime) -> str:
    """The zone abbreviation of an aware time: "CET", "EST", "IST"; where the zone database
    has no letters for it (Pacific/Chatham: "+1345"), the offset as "UTC+13:45"."""
    name = local.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    if minutes == 0:
        return "UTC"
    hours, minutes = divmod(minutes, 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def format_day(day: date) -> str:
    """A date as people read it: "3 Dec 2026"."""
    return f"{day.day} {day:%b %Y}"


def format_datetime(value: datetime | None, zone: str | None, *, date_only: bool = False) -> str:
    """``value`` (naive UTC, or aware) in ``zone``: "3 Dec 2026, 14:00 CET", or with
    ``date_only`` the local date "3 Dec 2026". Empty for None."""
    if value is None:
        return ""
    local = to_local(value, zone)
    if date_only:
        return format_day(local.date())
    return f"{format_day(local.date())}, {local:%H:%M} {abbreviation(local)}"


class NonexistentLocalTimeError(ValueError):
    """A wall-clock time that a spring-forward DST change skips in the zone."""

    def __init__(self, wall: datetime, zone: str, gap_start: datetime, gap_end: datetime) -> None:
        self.wall, self.zone, self.gap_start, self.gap_end = wall, zone, gap_start, gap_end
        super().__init__(
            f"{format_day(wall.date())}, {wall:%H:%M} does not exist in {zone_label(zone)}: "
            "the clocks "
            f"go forward from {gap_start:%H:%M} to {gap_end:%H:%M} that night. Choose a time "
            f"before {gap_start:%H:%M} or from {gap_end:%H:%M}."
        )


@dataclass(frozen=True)
class ResolvedTime:
    """A local wall-clock time resolved to one instant."""

    utc: datetime  # naive UTC, as stored
    local: datetime  # aware, in the zone
    ambiguous: bool  # the wall time happens twice (fall back): ``local`` is the first
    second: datetime | None  # the second occurrence when ambiguous (aware)

    def note(self) -> str:
        """What a person should be told about the resolution ("" when nothing is odd)."""
        if not self.ambiguous or self.second is None:
            return ""
        return (
            f"{format_day(self.local.date())}, {self.local:%H:%M} happens twice in "
            f"{zone_label(getattr(self.local.tzinfo, 'key', 'this zone'))} "
            "(the clocks go back that night); "
            f"the first one was taken: {self.local:%H:%M} {abbreviation(self.local)} "
            f"({self.utc:%H:%M} UTC), not {self.second:%H:%M} {abbreviation(self.second)}."
        )


def resolve_local(wall: datetime, zone: str) -> ResolvedTime:
    """The instant of the naive wall-clock time ``wall`` in ``zone``.

    Raises NonexistentLocalTimeError for a time in a spring-forward gap; a fall-back time
    that happens twice resolves to its first occurrence (``ambiguous`` is then True).
    """
    tz = get_zone(zone)
    wall = wall.replace(tzinfo=None, fold=0)
    first = wall.replace(tzinfo=tz, fold=0)
    later = wall.replace(tzinfo=tz, fold=1)
    utc_first = first.astimezone(UTC)
    if utc_first.astimezone(tz).replace(tzinfo=None) != wall:
        raise NonexistentLocalTimeError(wall, zone, *_gap_around(wall, tz))
    ambiguous = first.utcoffset() != later.utcoffset()
    return ResolvedTime(
        utc=utc_first.replace(tzinfo=None),
        local=utc_first.astimezone(tz),
        ambiguous=ambiguous,
        second=later.astimezone(UTC).astimezone(tz) if ambiguous else None,
    )


def _gap_around(wall: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The skipped local span [start, end) that holds the nonexistent ``wall``."""
    before = wall.replace(tzinfo=tz, fold=0).utcoffset() or timedelta(0)
    after = wall.replace(tzinfo=tz, fold=1).utcoffset() or timedelta(0)
    # The transition lies between these two instants; zone offsets change on whole minutes.
    instant = (wall - after).replace(tzinfo=UTC)
    last = (wall - before).replace(tzinfo=UTC)
    while instant <= last and (instant.astimezone(tz).utcoffset() or timedelta(0)) != after:
        instant += timedelta(minutes=1)
    start = (instant + before).replace(tzinfo=None)
    return start, (instant + after).replace(tzinfo=None)


def next_local_hour(now: datetime, hour: int, zone: str | None) -> datetime:
    """The next moment (naive UTC) at ``hour`` o'clock in ``zone``: ``now`` when the local
    clock is in that hour already. An hour a spring-forward skips that day starts when the
    clocks jump (02:00 in Berlin is 03:00 CEST); an hour that happens twice, at its first."""
    tz = get_zone(zone)
    local_now = to_local(now, zone)
    if local_now.hour == hour:
        return now
    for days in range(3):
        day = local_now.date() + timedelta(days=days)
        at = to_utc(datetime.combine(day, time(hour), tzinfo=tz))
        if at > now:
            return at
    raise AssertionError("an hour of the day comes back within two days")


# --- Jinja ---------------------------------------------------------------------------------


def current_zone() -> str:
    """The signed-in member's account zone for this request, UTC without one (cached in g)."""
    if not has_request_context():
        return DEFAULT_ZONE
    if "account_zone" not in g:
        from core.auth import current_member

        found = current_member()
        g.account_zone = found.time_zone if found else DEFAULT_ZONE
    return str(g.account_zone)


def _localtime(value: datetime | None, zone: str | None = None) -> str:
    return format_datetime(value, zone or current_zone())


def _localdate(value: datetime | None, zone: str | None = None) -> str:
    return format_datetime(value, zone or current_zone(), date_only=True)


def init_app(app: Flask) -> None:
    """Register ``|localtime``, ``|localdate``, ``|zone_label`` and ``time_zone()``."""
    app.add_template_filter(_localtime, "localtime")
    app.add_template_filter(_localdate, "localdate")
    app.add_template_global(current_zone, "time_zone")
    app.add_template_filter(zone_label, "zone_label")
