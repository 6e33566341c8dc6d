"""What the engine serves: suppression, best send hour, domain pace. Reads only.

These take address hashes and domains, never an account: the gate decides who may ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select

from core import db
from core.db import utcnow
from engine.models import EngineAddress, EngineAddressHour, EngineDomainDay
from engine.settings import setting

_CHUNK = 500


def is_suppressed() -> ColumnElement[bool]:
    """The rule, as SQL: complained, or hard-bounced with no delivery since the last bounce."""
    return or_(
        EngineAddress.complained > 0,
        and_(
            EngineAddress.bounced > 0,
            or_(
                EngineAddress.last_delivered_on.is_(None),
                EngineAddress.last_bounced_on >= EngineAddress.last_delivered_on,
            ),
        ),
    )


def suppressed_hashes(hashes: Iterable[str]) -> set[str]:
    """Of ``hashes``, those that complained, or hard-bounced with no delivery since."""
    wanted = list(set(hashes))
    found: set[str] = set()
    dead = is_suppressed()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            db.session.scalars(
                select(EngineAddress.address_hash).where(
                    EngineAddress.address_hash.in_(chunk), dead
                )
            )
        )
    return found


def engagement_hours(hashes: Iterable[str]) -> dict[str, dict[int, int]]:
    """Human engagements per hour of day (UTC) for each of ``hashes`` that has any."""
    wanted = list(set(hashes))
    found: dict[str, dict[int, int]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = db.session.execute(
            select(
                EngineAddressHour.address_hash,
                EngineAddressHour.hour,
                EngineAddressHour.engagements,
            ).where(EngineAddressHour.address_hash.in_(chunk))
        )
        for hashed, hour, engagements in rows:
            found.setdefault(hashed, {})[int(hour)] = int(engagements)
    return found


def window_hours(window: tuple[int, int]) -> list[int]:
    """The hours of a send window ``(start, end)``: start included, end excluded, wrapping past
    midnight when start > end, the whole day when start == end. ValueError when out of range."""
    start, end = window
    if not (0 <= start <= 23 and 0 <= end <= 24):
        raise ValueError("a send window runs from an hour 0-23 to an hour 0-24")
    end %= 24
    if start == end:
        return list(range(24))
    if start < end:
        return list(range(start, end))
    return list(range(start, 24)) + list(range(0, end))


def best_hour(histogram: dict[int, int], window: Sequence[int]) -> int | None:
    """The hour of ``window`` nearest to when the address is engaged, or None with too little
    evidence. Each engagement scores its own hour 1, hours one away 1/2, two away 1/4 ..."""
    if sum(histogram.values()) < int(setting("ENGINE_MIN_ENGAGEMENTS")):
        return None

    def score(hour: int) -> float:
        total = 0.0
        for engaged_hour, count in histogram.items():
            distance = min((hour - engaged_hour) % 24, (engaged_hour - hour) % 24)
            total += count * 0.5**distance
        return total

    return max(window, key=score)  # the first of equal scores: the earliest in the window


def domain_pace(domain: str) -> int | None:
    """Messages per minute for ``domain`` if it defers, else None (no limit).

    Over the last ENGINE_PACING_DAYS days, with at least ENGINE_PACING_MIN_ATTEMPTS attempts:
    a deferral share at ENGINE_DEFERRAL_THRESHOLD gives ENGINE_PACE_PER_MINUTE, each doubling
    of the share halves it, never below ENGINE_MIN_PACE_PER_MINUTE.
    """
    since = utcnow().date() - timedelta(days=int(setting("ENGINE_PACING_DAYS")) - 1)
    row = db.session.execute(
        select(
            func.coalesce(func.sum(EngineDomainDay.delivered), 0),
            func.coalesce(func.sum(EngineDomainDay.deferred), 0),
            func.coalesce(func.sum(EngineDomainDay.bounced), 0),
        ).where(EngineDomainDay.domain == domain.strip().lower(), EngineDomainDay.day >= since)
    ).one()
    delivered, deferred, bounced = (int(value) for value in row)
    attempts = delivered + deferred + bounced
    if attempts < int(setting("ENGINE_PACING_MIN_ATTEMPTS")) or attempts == 0:
        return None
    share = deferred / attempts
    threshold = float(setting("ENGINE_DEFERRAL_THRESHOLD"))
    if share < threshold:
        return None
    pace = int(setting("ENGINE_PACE_PER_MINUTE")) * threshold / share
    return max(int(setting("ENGINE_MIN_PACE_PER_MINUTE")), int(pace))


def about_address(address_hash: str) -> dict[str, object] | None:
    """What the engine has learned about one address hash, for that person's access report."""
    from engine.models import EngineAddress, EngineAddressHour

    row = db.session.get(EngineAddress, address_hash)
    if row is None:
        return None
    hours = db.session.execute(
        select(EngineAddressHour.hour, EngineAddressHour.engagements)
        .where(EngineAddressHour.address_hash == address_hash)
        .order_by(EngineAddressHour.hour)
    ).all()
    return {
        "domain": row.domain,
        "delivered": row.delivered,
        "deferred": row.deferred,
        "bounced": row.bounced,
        "complained": row.complained,
        "human_opens": row.opens,
        "human_clicks": row.clicks,
        "last_delivered_on": row.last_delivered_on.isoformat() if row.last_delivered_on else None,
        "last_bounced_on": row.last_bounced_on.isoformat() if row.last_bounced_on else None,
        "engagement_hours_utc": ", ".join(f"{hour:02d}h:{count}" for hour, count in hours),
    }
