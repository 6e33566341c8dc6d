"""What operators see of the engine: aggregates per domain and per day, never per address.

A domain with fewer than ENGINE_OPERATOR_MIN_ADDRESSES known addresses is not named: its
figures are added to one "smaller domains" row, so no row describes one or two people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import distinct, func, select

from accounts.models import Account
from core import db
from core.db import utcnow
from engine import queries
from engine.models import EngineAddress, EngineAddressHour, EngineContribution, EngineDomainDay
from engine.settings import setting

OUTCOME_FIELDS = ("delivered", "deferred", "bounced", "complained")


@dataclass(frozen=True)
class DayTotals:
    day: date
    delivered: int
    deferred: int
    bounced: int
    complained: int
    opens: int
    clicks: int

    @property
    def attempts(self) -> int:
        return self.delivered + self.deferred + self.bounced


@dataclass(frozen=True)
class DomainSummary:
    domain: str  # '' for the row of smaller domains
    domains: int  # how many domains the row covers
    addresses: int
    suppressed: int
    delivered: int
    deferred: int
    bounced: int
    complained: int
    opens: int
    clicks: int
    pace: int | None

    @property
    def deferral_percent(self) -> float:
        attempts = self.delivered + self.deferred + self.bounced
        return 100 * self.deferred / attempts if attempts else 0.0

    @property
    def bounce_percent(self) -> float:
        attempts = self.delivered + self.deferred + self.bounced
        return 100 * self.bounced / attempts if attempts else 0.0


@dataclass(frozen=True)
class EngineOverview:
    days: list[DayTotals]
    domains: list[DomainSummary]
    hours: list[int]  # human engagements per hour of day, UTC, 0-23
    addresses: int
    suppressed: int
    contributing_accounts: int
    participating_accounts: int
    accounts: int
    min_addresses: int

    @property
    def is_empty(self) -> bool:
        return self.addresses == 0 and not any(day.attempts for day in self.days)


def overview(days: int = 30) -> EngineOverview:
    """The engine's holdings in aggregate over the last ``days`` days (UTC)."""
    today = utcnow().date()
    since = today - timedelta(days=days - 1)
    per_day = {
        row.day: row
        for row in db.session.execute(
            select(
                EngineDomainDay.day,
                *(func.sum(getattr(EngineDomainDay, name)).label(name) for name in _DAY_FIELDS),
            )
            .where(EngineDomainDay.day >= since)
            .group_by(EngineDomainDay.day)
        )
    }
    day_rows = []
    for offset in range(days):
        day = since + timedelta(days=offset)
        row = per_day.get(day)
        day_rows.append(
            DayTotals(day, *(int(getattr(row, name) or 0) if row else 0 for name in _DAY_FIELDS))
        )
    hours = [0] * 24
    for hour, engagements in db.session.execute(
        select(EngineAddressHour.hour, func.sum(EngineAddressHour.engagements)).group_by(
            EngineAddressHour.hour
        )
    ):
        hours[int(hour)] = int(engagements or 0)
    suppressed_total = _suppressed_per_domain()
    return EngineOverview(
        days=day_rows,
        domains=_domains(since, suppressed_total),
        hours=hours,
        addresses=int(db.session.scalar(select(func.count()).select_from(EngineAddress)) or 0),
        suppressed=sum(suppressed_total.values()),
        contributing_accounts=int(
            db.session.scalar(select(func.count(distinct(EngineContribution.account_id)))) or 0
        ),
        participating_accounts=int(
            db.session.scalar(select(func.count()).where(Account.engine_participation.is_(True)))
            or 0
        ),
        accounts=int(db.session.scalar(select(func.count()).select_from(Account)) or 0),
        min_addresses=int(setting("ENGINE_OPERATOR_MIN_ADDRESSES")),
    )


_DAY_FIELDS = ("delivered", "deferred", "bounced", "complained", "opens", "clicks")


def _suppressed_per_domain() -> dict[str, int]:
    rows = db.session.execute(
        select(EngineAddress.domain, func.count())
        .where(queries.is_suppressed())
        .group_by(EngineAddress.domain)
    )
    return {domain: int(count) for domain, count in rows}


def _domains(since: date, suppressed: dict[str, int]) -> list[DomainSummary]:
    minimum = int(setting("ENGINE_OPERATOR_MIN_ADDRESSES"))
    addresses = dict(
        db.session.execute(
            select(EngineAddress.domain, func.count()).group_by(EngineAddress.domain)
        ).all()
    )
    sums = {
        row.domain: row
        for row in db.session.execute(
            select(
                EngineDomainDay.domain,
                *(func.sum(getattr(EngineDomainDay, name)).label(name) for name in _DAY_FIELDS),
            )
            .where(EngineDomainDay.day >= since)
            .group_by(EngineDomainDay.domain)
        )
    }
    named: list[DomainSummary] = []
    small: dict[str, int] = dict.fromkeys(("addresses", "suppressed", *_DAY_FIELDS), 0)
    small_domains = 0
    for domain in sorted(set(addresses) | set(sums)):
        figures = {name: int(getattr(sums.get(domain), name, 0) or 0) for name in _DAY_FIELDS}
        count = int(addresses.get(domain, 0))
        if count >= minimum:
            named.append(
                DomainSummary(
                    domain=domain,
                    domains=1,
                    addresses=count,
                    suppressed=suppressed.get(domain, 0),
                    pace=queries.domain_pace(domain),
                    **figures,
                )
            )
        else:
            small_domains += 1
            small["addresses"] += count
            small["suppressed"] += suppressed.get(domain, 0)
            for name, value in figures.items():
                small[name] += value
    named.sort(key=lambda summary: (-summary.addresses, summary.domain))
    if small_domains:
        named.append(DomainSummary(domain="", domains=small_domains, pace=None, **small))
    return named
