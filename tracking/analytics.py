"""Campaign figures and reports. Reads only, always through the account that owns the campaign.

No figure is counted from ``tracking_events``: totals, uniques, per-day series and per-link
figures come from the daily aggregates, hourly series from the quarter-hour roll-up, figures
by recipient domain and machine reasons from their roll-ups (:mod:`tracking.rollups`). They
hold no personal data and outlive the events' retention, so a report's cost does not grow
with its events. Delivery figures (sent, failed) are the messages' own columns.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from accounts.models import Account
from campaigns import delivery_domains
from campaigns import queries as campaign_queries
from campaigns.models import Campaign, Link
from core import db, timezones
from core.errors import NotFoundError
from tracking import rollups
from tracking.models import (
    DailyCampaignStat,
    DailyLinkStat,
    DomainStat,
    MessageUnsubscribe,
    QuarterStat,
    ReasonStat,
    UnsubscribeStatus,
)


@dataclass(frozen=True)
class BounceCounts:
    bounces: int
    complaints: int


def bounce_counts(campaign_id: int) -> BounceCounts:
    """Bounces (hard and soft) and complaints of a campaign, as the sending package recorded
    them (at SMTP time, from DSNs, feedback reports and provider webhooks)."""
    counts = campaign_queries.bounce_counts(campaign_id)
    return BounceCounts(bounces=counts["hard"] + counts["soft"], complaints=counts["complaint"])


@dataclass(frozen=True)
class CampaignStats:
    total: int
    sent: int
    pending: int
    failed: int
    skipped: int
    opens: int
    unique_opens: int
    clicks: int
    unique_clicks: int
    unsubscribes: int
    machine_opens: int
    machine_clicks: int
    clicks_per_link: list[tuple[str, int]] = field(default_factory=list)
    unsubscribes_undone: int = 0  # undone by the person within minutes: not in ``unsubscribes``

    @property
    def progress_percent(self) -> int:
        done = self.sent + self.failed + self.skipped
        return int(100 * done / self.total) if self.total else 100


def _aggregate_totals(campaign_id: int) -> dict[tuple[str, bool], tuple[int, int]]:
    rows = db.session.execute(
        select(
            DailyCampaignStat.kind,
            DailyCampaignStat.is_machine,
            func.sum(DailyCampaignStat.total),
            func.sum(DailyCampaignStat.uniques),
        )
        .where(DailyCampaignStat.campaign_id == campaign_id)
        .group_by(DailyCampaignStat.kind, DailyCampaignStat.is_machine)
    ).all()
    return {
        (kind, bool(machine)): (int(total or 0), int(uniques or 0))
        for kind, machine, total, uniques in rows
    }


def _unsubscribe_counts(campaign_id: int) -> dict[str, int]:
    rows = db.session.execute(
        select(MessageUnsubscribe.status, func.count())
        .where(MessageUnsubscribe.campaign_id == campaign_id)
        .group_by(MessageUnsubscribe.status)
    ).all()
    return {str(status): int(count) for status, count in rows}


def campaign_stats(campaign_id: int) -> CampaignStats:
    """The campaign's delivery and engagement figures (human counts; machine ones beside).

    Unsubscribes: the messages whose recipient unsubscribed through them and did not undo it
    (one each, however many requests), plus the unsubscribe aggregates of before migration
    0302, when each request was counted as a hit."""
    campaign = db.session.get(Campaign, campaign_id)
    messages = campaign_queries.message_counts(campaign) if campaign is not None else None
    counts = _aggregate_totals(campaign_id)
    unsubscribes = _unsubscribe_counts(campaign_id)

    def total(kind: str, machine: bool = False) -> int:
        return counts.get((kind, machine), (0, 0))[0]

    def unique(kind: str) -> int:
        return counts.get((kind, False), (0, 0))[1]

    per_link = db.session.execute(
        select(Link.url, func.coalesce(func.sum(DailyLinkStat.total), 0))
        .outerjoin(
            DailyLinkStat, (DailyLinkStat.link_id == Link.id) & DailyLinkStat.is_machine.is_(False)
        )
        .where(Link.campaign_id == campaign_id)
        .group_by(Link.id, Link.url)
        .order_by(Link.position)
    ).all()
    return CampaignStats(
        total=messages.total if messages else 0,
        sent=messages.sent if messages else 0,
        pending=messages.pending if messages else 0,
        failed=messages.failed if messages else 0,
        skipped=messages.skipped if messages else 0,
        opens=total("open"),
        unique_opens=unique("open"),
        clicks=total("click"),
        unique_clicks=unique("click"),
        unsubscribes=total("unsubscribe")
        + total("unsubscribe", True)
        + unsubscribes.get(UnsubscribeStatus.ACTIVE.value, 0),
        unsubscribes_undone=unsubscribes.get(UnsubscribeStatus.UNDONE.value, 0),
        machine_opens=total("open", True),
        machine_clicks=total("click", True),
        clicks_per_link=[(url, int(n)) for url, n in per_link],
    )


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime  # aware, in the report's zone
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


@dataclass(frozen=True)
class LinkRow:
    url: str
    clicks: int
    unique_clicks: int
    machine_clicks: int


@dataclass(frozen=True)
class DomainRow:
    domain: str
    sent: int
    failed: int
    opens: int
    unique_opens: int
    clicks: int
    unique_clicks: int


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    stats: CampaignStats
    bounces: BounceCounts
    identified: bool  # the account tracks individually (uniques and domains are meaningful)
    granularity: str  # hour | day
    zone: str  # the time zone of the series' hours and days
    series: list[SeriesPoint]
    links: list[LinkRow]
    domains: list[DomainRow]
    machine_reasons: list[tuple[str, int]]

    def rate(self, count: int) -> str:
        """``count`` as a share of the messages sent, for display."""
        return f"{100 * count / self.stats.sent:.1f}%" if self.stats.sent else "—"


def _campaign_of(account_id: int, campaign_id: int) -> tuple[Campaign, Account]:
    row = db.session.execute(
        select(Campaign, Account)
        .join(Account, Account.id == Campaign.account_id)
        .where(Campaign.id == campaign_id, Campaign.account_id == account_id)
    ).first()
    if row is None:
        raise NotFoundError("campaign")
    return row[0], row[1]


def _by_quarter(campaign_id: int) -> dict[datetime, list[int]]:
    """Opens and clicks (human, machine) per UTC quarter hour, from the roll-up."""
    counts: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for quarter, kind, machine, total in db.session.execute(
        select(
            QuarterStat.quarter, QuarterStat.kind, QuarterStat.is_machine, QuarterStat.total
        ).where(QuarterStat.campaign_id == campaign_id, QuarterStat.total != 0)
    ):
        start = _EPOCH + timedelta(seconds=int(quarter) * rollups.QUARTER_SECONDS)
        counts[start][(0 if kind == "open" else 1) + (2 if machine else 0)] += int(total)
    return counts


_EPOCH = datetime(1970, 1, 1)


def _local_hours(quarters: dict[datetime, list[int]], zone: str) -> list[SeriesPoint]:
    """Every local hour from the first to the last with events, each starting at its aware
    local time (a fall-back's repeated hour appears twice, a skipped one not at all)."""
    hourly: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for start, values in quarters.items():
        local = timezones.to_local(start, zone)
        hour_start = start - timedelta(minutes=local.minute)  # UTC instant of the local hour
        for index, value in enumerate(values):
            hourly[hour_start][index] += value
    points, cursor, last = [], min(hourly), max(hourly)
    while cursor <= last:
        points.append(SeriesPoint(timezones.to_local(cursor, zone), *hourly.get(cursor, [0] * 4)))
        following = cursor + timedelta(hours=1)
        cursor = following - timedelta(minutes=timezones.to_local(following, zone).minute)
    return points


def _days(daily: dict[date, list[int]], zone: str) -> list[SeriesPoint]:
    points, day = [], min(daily)
    tz = timezones.get_zone(zone)
    while day <= max(daily):
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        points.append(SeriesPoint(start, *daily.get(day, [0, 0, 0, 0])))
        day += timedelta(days=1)
    return points


def _series(campaign_id: int, zone: str) -> tuple[str, str, list[SeriesPoint]]:
    """(granularity, zone of the buckets, points): per local hour while the campaign's
    figures span three local days or less, else per local day.

    The daily aggregates are kept per UTC day and cannot be cut into another zone's days, so
    the series is built from the quarter-hour roll-up whenever it holds every counted open
    and click (always, since migration 0323 rolled the events of the time into it). Where it
    does not (events deleted by retention before that migration), the days are the
    aggregates' UTC days (and the zone returned says UTC).
    """
    aggregated: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for day, kind, machine, total in db.session.execute(
        select(
            DailyCampaignStat.day,
            DailyCampaignStat.kind,
            DailyCampaignStat.is_machine,
            DailyCampaignStat.total,
        ).where(
            DailyCampaignStat.campaign_id == campaign_id,
            DailyCampaignStat.kind.in_(("open", "click")),
        )
    ):
        aggregated[day][(0 if kind == "open" else 1) + (2 if machine else 0)] += int(total)
    if not aggregated:
        return "day", zone, []
    quarters = _by_quarter(campaign_id)
    complete = [sum(v) for v in zip(*quarters.values(), strict=False)] == [
        sum(v) for v in zip(*aggregated.values(), strict=False)
    ]
    recent = (max(aggregated) - min(aggregated)).days <= 2
    if quarters and (complete or recent):
        hours = _local_hours(quarters, zone)
        first, last = hours[0].start.date(), hours[-1].start.date()
        if (last - first).days <= 2:
            return "hour", zone, hours
        if complete:
            local_days: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
            for point in hours:
                values = (point.opens, point.clicks, point.machine_opens, point.machine_clicks)
                for index, value in enumerate(values):
                    local_days[point.start.date()][index] += value
            return "day", zone, _days(local_days, zone)
    return "day", timezones.DEFAULT_ZONE, _days(aggregated, timezones.DEFAULT_ZONE)


def _links(campaign_id: int) -> list[LinkRow]:
    rows = db.session.execute(
        select(
            Link.url,
            DailyLinkStat.is_machine,
            func.sum(DailyLinkStat.total),
            func.sum(DailyLinkStat.uniques),
        )
        .outerjoin(DailyLinkStat, DailyLinkStat.link_id == Link.id)
        .where(Link.campaign_id == campaign_id)
        .group_by(Link.id, Link.position, Link.url, DailyLinkStat.is_machine)
        .order_by(Link.position)
    ).all()
    merged: dict[str, list[int]] = {}
    for url, machine, total, uniques in rows:
        entry = merged.setdefault(url, [0, 0, 0])
        if machine is None:
            continue
        if machine:
            entry[2] += int(total or 0)
        else:
            entry[0] += int(total or 0)
            entry[1] += int(uniques or 0)
    return [LinkRow(url, *values) for url, values in merged.items()]


def _domains(campaign_id: int, limit: int = 12) -> list[DomainRow]:
    figures: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for name, (sent, failed) in delivery_domains.delivery_by_domain(campaign_id).items():
        figures[name][0] += sent
        figures[name][1] += failed
    for name, kind, total, uniques in db.session.execute(
        select(DomainStat.domain, DomainStat.kind, DomainStat.total, DomainStat.uniques).where(
            DomainStat.campaign_id == campaign_id, DomainStat.kind.in_(rollups.SERIES_KINDS)
        )
    ):
        if not (total or uniques):
            continue
        offset = 2 if kind == "open" else 4
        figures[str(name)][offset] += int(total)
        figures[str(name)][offset + 1] += int(uniques)
    rows = sorted(figures.items(), key=lambda item: (-item[1][0], item[0]))
    return [DomainRow(name, *values) for name, values in rows[:limit]]


def _machine_reasons(campaign_id: int) -> list[tuple[str, int]]:
    rows = db.session.execute(
        select(ReasonStat.reason, ReasonStat.total)
        .where(ReasonStat.campaign_id == campaign_id, ReasonStat.total > 0)
        .order_by(ReasonStat.total.desc(), ReasonStat.reason)
    ).all()
    return [(str(reason), int(count)) for reason, count in rows]


def campaign_report(account_id: int, campaign_id: int) -> CampaignReport:
    """The full report of one of the account's campaigns; NotFoundError for anyone else's."""
    campaign, account = _campaign_of(account_id, campaign_id)
    granularity, zone, series = _series(campaign.id, account.time_zone)
    return CampaignReport(
        campaign=campaign,
        stats=campaign_stats(campaign.id),
        bounces=bounce_counts(campaign.id),
        identified=account.individual_tracking,
        granularity=granularity,
        zone=zone,
        series=series,
        links=_links(campaign.id),
        domains=_domains(campaign.id),
        machine_reasons=_machine_reasons(campaign.id),
    )


@dataclass(frozen=True)
class OverviewRow:
    campaign: Campaign
    stats: CampaignStats
    bounces: BounceCounts

    def rate(self, count: int) -> float:
        return 100 * count / self.stats.sent if self.stats.sent else 0.0


def account_overview(account_id: int, limit: int = 10) -> list[OverviewRow]:
    """The account's most recent sent (or sending) campaigns with their figures, newest first."""
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.account_id == account_id, Campaign.status != "draft")
        .order_by(Campaign.started_at.desc(), Campaign.id.desc())
        .limit(limit)
    ).all()
    return [OverviewRow(c, campaign_stats(c.id), bounce_counts(c.id)) for c in campaigns]


def report_csv(report: CampaignReport) -> str:
    """The report as CSV: one section of rows per table, figures only (no personal data)."""
    out = io.StringIO()
    writer = csv.writer(out)
    s = report.stats

    def cell(value: object) -> object:
        # Neutralise spreadsheet formulas in text cells (URLs, names).
        text = str(value)
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else value

    writer.writerow(["campaign", cell(report.campaign.name)])
    writer.writerow(["section", "metric", "human", "machine", "unique"])
    writer.writerow(["summary", "sent", s.sent, "", ""])
    writer.writerow(["summary", "opens", s.opens, s.machine_opens, s.unique_opens])
    writer.writerow(["summary", "clicks", s.clicks, s.machine_clicks, s.unique_clicks])
    writer.writerow(["summary", "unsubscribes", s.unsubscribes, "", ""])
    writer.writerow(["summary", "unsubscribes undone", s.unsubscribes_undone, "", ""])
    writer.writerow(["summary", "bounces", report.bounces.bounces, "", ""])
    writer.writerow(["summary", "complaints", report.bounces.complaints, "", ""])
    writer.writerow([])
    writer.writerow([report.granularity, "opens", "clicks", "machine opens", "machine clicks"])
    for point in report.series:
        writer.writerow(
            [
                point.start.isoformat(sep=" "),
                point.opens,
                point.clicks,
                point.machine_opens,
                point.machine_clicks,
            ]
        )
    writer.writerow([])
    writer.writerow(["link", "clicks", "unique clicks", "machine clicks"])
    for link in report.links:
        writer.writerow([cell(link.url), link.clicks, link.unique_clicks, link.machine_clicks])
    writer.writerow([])
    writer.writerow(["domain", "sent", "bounced", "opens", "unique opens", "clicks", "unique"])
    for row in report.domains:
        writer.writerow(
            [
                cell(row.domain),
                row.sent,
                row.failed,
                row.opens,
                row.unique_opens,
                row.clicks,
                row.unique_clicks,
            ]
        )
    return out.getvalue()
