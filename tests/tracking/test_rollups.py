"""The campaign report built from the roll-ups equals the report built from the raw events.

The raw-event computation below is the report as it was before the roll-ups (migration 0323),
kept here as the oracle: hourly/daily series in the account's zone, figures per recipient
domain, machine reasons. Generated data: many hits, human and machine (agents, HEAD,
honeypot, bursts that reclassify earlier hits), anonymous and identified, re-opens and
repeated clicks, several domains (one non-ASCII), hours and days, erasures between batches.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import delete, distinct, func, select

from accounts import services as accounts
from campaigns import progress_counts
from campaigns.models import CampaignDomainCount, Link, Message
from core import db as core_db
from core import timezones
from core.db import utcnow
from privacy import services as privacy
from subscribers.models import Contact
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import Sent, send_campaign
from tracking import analytics, services
from tracking.hits import Hit
from tracking.models import TrackingEvent

RECIPIENTS = [
    "ada@example.org",
    "bob@example.org",
    "cy@example.net",
    "dee@example.net",
    "ольга@почта.example",
    "иван@почта.example",
    "zoë@correo.example",
    "fay@shop.example.com",
]
ZONE = "Asia/Kolkata"  # +05:30: local hours are made of UTC quarter hours
HUMAN_AGENTS = ("desktop", "mobile", "desktop", "webmail")
MACHINE_AGENTS = ("apple-mpp", "scanner", "gmail-proxy")


# --- the oracle: the report's figures counted from the raw events ---------------------------


def _raw_series(campaign_id: int, granularity: str) -> dict[Any, list[int]]:
    """Opens, clicks, machine opens, machine clicks per local hour (or day) of ZONE."""
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for occurred_at, kind, machine in core_db.session.execute(
        select(TrackingEvent.occurred_at, TrackingEvent.kind, TrackingEvent.is_machine).where(
            TrackingEvent.campaign_id == campaign_id, TrackingEvent.kind.in_(("open", "click"))
        )
    ):
        local = timezones.to_local(occurred_at, ZONE)
        key: Any = (
            local.replace(minute=0, second=0, microsecond=0)
            if granularity == "hour"
            else local.date()
        )
        counts[key][(0 if kind == "open" else 1) + (2 if machine else 0)] += 1
    return dict(counts)


def _raw_domains(campaign_id: int) -> list[analytics.DomainRow]:
    domain = func.lower(func.substr(Contact.email, func.instr(Contact.email, "@") + 1))
    if core_db.session.get_bind().dialect.name == "postgresql":
        domain = func.lower(func.split_part(Contact.email, "@", 2))
    figures: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for name, status, count in core_db.session.execute(
        select(domain, Message.status, func.count())
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id)
        .group_by(domain, Message.status)
    ):
        if status in ("sent", "failed"):
            figures[str(name)][0 if status == "sent" else 1] += int(count)
    for name, kind, total, uniques in core_db.session.execute(
        select(domain, TrackingEvent.kind, func.count(), func.count(distinct(Message.id)))
        .join(Message, Message.id == TrackingEvent.message_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(
            TrackingEvent.campaign_id == campaign_id,
            TrackingEvent.is_machine.is_(False),
            TrackingEvent.kind.in_(("open", "click")),
        )
        .group_by(domain, TrackingEvent.kind)
    ):
        offset = 2 if kind == "open" else 4
        figures[str(name)][offset] += int(total)
        figures[str(name)][offset + 1] += int(uniques)
    rows = sorted(figures.items(), key=lambda item: (-item[1][0], item[0]))
    return [analytics.DomainRow(name, *values) for name, values in rows[:12]]


def _raw_reasons(campaign_id: int) -> list[tuple[str, int]]:
    rows = core_db.session.execute(
        select(TrackingEvent.machine_reason, func.count())
        .where(TrackingEvent.campaign_id == campaign_id, TrackingEvent.is_machine.is_(True))
        .group_by(TrackingEvent.machine_reason)
    ).all()
    return sorted(((str(r or "machine"), int(n)) for r, n in rows), key=lambda x: (-x[1], x[0]))


def _assert_report_equals_the_events(app: Flask, sent: Sent) -> analytics.CampaignReport:
    with app.app_context():
        report = analytics.campaign_report(sent.tenant.account_id, sent.campaign_id)
        series = {
            (point.start if report.granularity == "hour" else point.start.date()): [
                point.opens,
                point.clicks,
                point.machine_opens,
                point.machine_clicks,
            ]
            for point in report.series
            if point.opens or point.clicks or point.machine_opens or point.machine_clicks
        }
        assert report.zone == ZONE
        assert series == _raw_series(sent.campaign_id, report.granularity)
        assert report.domains == _raw_domains(sent.campaign_id)
        assert report.machine_reasons == _raw_reasons(sent.campaign_id)
        core_db.session.remove()
    return report


# --- generated traffic ------------------------------------------------------------------------


def _targets(app: Flask, sent: Sent) -> tuple[dict[str, int], list[int]]:
    with app.app_context():
        messages = {
            str(email): int(message_id)
            for message_id, email in core_db.session.execute(
                select(Message.id, Contact.email)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.campaign_id == sent.campaign_id)
            )
        }
        links = list(
            core_db.session.scalars(
                select(Link.id).where(Link.campaign_id == sent.campaign_id).order_by(Link.position)
            )
        )
        core_db.session.remove()
    return messages, links


def _traffic(
    rng: random.Random,
    campaign_id: int,
    messages: list[int],
    links: list[int],
    start: datetime,
    hours: float,
    count: int,
) -> list[Hit]:
    """``count`` hits spread over ``hours`` from ``start``: opens (often again), clicks,
    people and machines, identified and anonymous, some HEAD requests and honeypot fetches."""
    hits = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.randrange(int(hours * 3600)))
        message = rng.choice(messages) if rng.random() < 0.85 else None
        agent = rng.choice(HUMAN_AGENTS if rng.random() < 0.7 else MACHINE_AGENTS)
        roll = rng.random()
        if roll < 0.5:
            hit = Hit("open", campaign_id, message, None, None, agent, at)
        elif roll < 0.9:
            hit = Hit("click", campaign_id, message, rng.choice(links), None, agent, at)
        elif roll < 0.95:
            hit = Hit("open", campaign_id, message, None, None, agent, at, method="HEAD")
        else:
            hit = Hit("honeypot", campaign_id, message, None, None, agent, at)
        hits.append(hit)
    return sorted(hits, key=lambda h: h.occurred_at)


def _burst(campaign_id: int, message: int, links: list[int], at: datetime) -> list[list[Hit]]:
    """A person's click, then (in a later batch) the same message fetching every link within
    a second: the scanner's burst makes the first click a machine's after the fact."""
    return [
        [Hit("click", campaign_id, message, links[0], None, "desktop", at)],
        [
            Hit("click", campaign_id, message, link, None, "desktop", at + timedelta(seconds=1))
            for link in links
        ],
    ]


def _ingest(app: Flask, hits: list[Hit], batch: int = 40) -> None:
    with app.app_context():
        for start in range(0, len(hits), batch):
            services.ingest(hits[start : start + batch])
        core_db.session.remove()


def _erase(app: Flask, sent: Sent, address: str) -> None:
    with app.app_context():
        contact_id = core_db.session.scalar(
            select(Contact.id).where(
                Contact.account_id == sent.tenant.account_id, Contact.email == address
            )
        )
        assert contact_id is not None
        privacy.erase_contact(sent.tenant.account_id, int(contact_id), sent.tenant.user_id)
        core_db.session.remove()


def test_the_report_from_rollups_equals_the_report_from_events(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    with app.app_context():
        accounts.update_general_settings(sent.tenant.account_id, "Shop", "1 Main St", ZONE)
        core_db.session.remove()
    messages, links = _targets(app, sent)
    assert len(messages) == len(RECIPIENTS) and len(links) >= 3
    # The campaign is over: the reconciler keeps its delivery by domain, which the report
    # reads from now on (and which the erasures below must take the person out of).
    with app.app_context():
        progress_counts.refresh_due()
        kept = select(func.count()).where(CampaignDomainCount.campaign_id == sent.campaign_id)
        assert core_db.session.scalar(kept) == 5
        # A campaign over before migration 0330 has none yet: the reconciler's backfill.
        core_db.session.execute(delete(CampaignDomainCount))
        core_db.session.commit()
        progress_counts.refresh_due()
        assert core_db.session.scalar(kept) == 5
        core_db.session.remove()
    rng = random.Random(17)
    start = (utcnow() + timedelta(hours=2)).replace(minute=7, second=0, microsecond=0)

    # Two days of traffic: the series is per local hour.
    _ingest(app, _traffic(rng, sent.campaign_id, list(messages.values()), links, start, 40, 600))
    for batch in _burst(sent.campaign_id, messages["bob@example.org"], links, start):
        _ingest(app, batch)
    report = _assert_report_equals_the_events(app, sent)
    assert report.granularity == "hour"
    assert {r.domain for r in report.domains} >= {"example.org", "почта.example"}
    assert "burst" in dict(report.machine_reasons)
    assert sum(r.opens for r in report.domains) > sum(r.unique_opens for r in report.domains)

    # Two people erased: their events stop being identified, their domain figures go down.
    _erase(app, sent, "ольга@почта.example")
    _erase(app, sent, "ada@example.org")
    after = _assert_report_equals_the_events(app, sent)
    domains = {row.domain: row for row in after.domains}
    before = {row.domain: row for row in report.domains}
    assert domains["почта.example"].opens < before["почта.example"].opens

    # Later traffic (hits for the erased people's messages are dropped): over three local
    # days, so the series is per local day.
    remaining = [m for address, m in messages.items() if address not in ("ada@example.org",)]
    later = start + timedelta(days=4)
    _ingest(app, _traffic(rng, sent.campaign_id, remaining, links, later, 30, 300))
    report = _assert_report_equals_the_events(app, sent)
    assert report.granularity == "day"
    assert all(isinstance(key, date) for key in _days(report))


def _days(report: analytics.CampaignReport) -> list[date]:
    return [point.start.date() for point in report.series]
