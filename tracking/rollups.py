"""Roll-ups of tracking events: the counts reports read instead of the events.

Every figure of a campaign report that used to be counted from ``tracking_events`` is kept
here, added by the ingest in the transaction that stores the events (and moved by the same
transaction when a later batch reclassifies earlier human hits as machine ones):

- daily per campaign and per link (``tracking_daily_*``: totals, uniques, per-day series);
- per UTC quarter hour (``tracking_quarter_stats``: the hourly series in any zone);
- per recipient domain (``tracking_domain_stats``: human identified opens and clicks, and the
  messages with one, decided at ingest as the message's first human event of the kind);
- per machine reason (``tracking_reason_stats``).

None holds personal data (campaign, day/quarter/domain/reason, kind, counts). They outlive the
events' retention, so a report costs the same whatever the number of its events. Erasure
unlinks a person's events from their messages; :func:`forget_identified` takes those events
out of the domain figures, which are the only ones that depend on the link.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.dialects import postgresql, sqlite

from core import db
from tracking.models import DailyCampaignStat, DailyLinkStat, DomainStat, QuarterStat, ReasonStat

#: Seconds in a quarter hour; the unit of ``tracking_quarter_stats.quarter``.
QUARTER_SECONDS = 900
EPOCH = datetime(1970, 1, 1)
#: The kinds the series and the domain figures count.
SERIES_KINDS = ("open", "click")


def quarter_of(when: datetime) -> int:
    """The quarter-hour number (since the epoch, UTC) of a naive UTC time."""
    return int((when - EPOCH).total_seconds()) // QUARTER_SECONDS


def domain_of(email: str | None) -> str | None:
    """The recipient domain a figure is kept under (what follows the first ``@``)."""
    if not email or "@" not in email:
        return None
    return email.split("@", 1)[1].lower()


@dataclass
class Deltas:
    """Counts to add (negative: subtract) to the roll-ups, gathered per batch."""

    # (campaign, day, kind, machine) -> [account, total, uniques]
    campaign: dict[tuple[int, date, str, bool], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    # (link, day, machine) -> [account, campaign, total, uniques]
    link: dict[tuple[int, date, bool], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    # (campaign, quarter, kind, machine) -> [account, total]
    quarter: dict[tuple[int, int, str, bool], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    # (campaign, domain, kind) -> [account, total, uniques]
    domain: dict[tuple[int, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    # (campaign, reason) -> [account, total]
    reason: dict[tuple[int, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )

    def count(
        self,
        row: dict[str, Any],
        machine: bool,
        step: int,
        first_of_kind: bool,
        first_of_link: bool,
        domain: str | None,
        reason: str | None = None,
    ) -> None:
        """Count one event ``step`` times (1 stored, -1 taken back) as human or machine.

        ``row`` holds account_id, campaign_id, kind, link_id, occurred_at and message_id;
        ``domain`` is its recipient's (None when not identified); ``reason`` its machine
        reason when ``machine``."""
        account, campaign, kind = row["account_id"], row["campaign_id"], row["kind"]
        occurred_at: datetime = row["occurred_at"]
        day = occurred_at.date()
        counts = self.campaign[(campaign, day, kind, machine)]
        counts[0] = account
        counts[1] += step
        counts[2] += step * int(first_of_kind)
        if kind == "click" and row["link_id"] is not None:
            link_counts = self.link[(row["link_id"], day, machine)]
            link_counts[0], link_counts[1] = account, campaign
            link_counts[2] += step
            link_counts[3] += step * int(first_of_link)
        if kind in SERIES_KINDS:
            quarter = self.quarter[(campaign, quarter_of(occurred_at), kind, machine)]
            quarter[0] = account
            quarter[1] += step
            if not machine and domain is not None and row["message_id"] is not None:
                by_domain = self.domain[(campaign, domain, kind)]
                by_domain[0] = account
                by_domain[1] += step
                by_domain[2] += step * int(first_of_kind)
        if machine:
            by_reason = self.reason[(campaign, reason or "machine")]
            by_reason[0] = account
            by_reason[1] += step

    def apply(self) -> None:
        """Add the counts to the roll-up rows, creating them as needed (one upsert per row)."""
        dialect = db.session.get_bind().dialect.name
        for (campaign, day, kind, machine), (account, total, uniques) in self.campaign.items():
            _upsert(
                DailyCampaignStat,
                dialect,
                {"campaign_id": campaign, "day": day, "kind": kind, "is_machine": machine},
                account,
                total=total,
                uniques=uniques,
            )
        for (link, day, machine), (account, campaign, total, uniques) in self.link.items():
            _upsert(
                DailyLinkStat,
                dialect,
                {"link_id": link, "day": day, "is_machine": machine},
                account,
                {"campaign_id": campaign},
                total=total,
                uniques=uniques,
            )
        for (campaign, quarter, kind, machine), (account, total) in self.quarter.items():
            _upsert(
                QuarterStat,
                dialect,
                {"campaign_id": campaign, "quarter": quarter, "kind": kind, "is_machine": machine},
                account,
                total=total,
            )
        for (campaign, domain, kind), (account, total, uniques) in self.domain.items():
            _upsert(
                DomainStat,
                dialect,
                {"campaign_id": campaign, "domain": domain, "kind": kind},
                account,
                total=total,
                uniques=uniques,
            )
        for (campaign, reason), (account, total) in self.reason.items():
            _upsert(
                ReasonStat,
                dialect,
                {"campaign_id": campaign, "reason": reason},
                account,
                total=total,
            )


def _upsert(
    model: Any,
    dialect: str,
    key: dict[str, Any],
    account_id: int,
    fixed: dict[str, Any] | None = None,
    **counts: int,
) -> None:
    """Add ``counts`` to the row of ``model`` named by ``key`` (its unique columns); ``fixed``
    are further values of a new row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(account_id=account_id, **key, **(fixed or {}), **counts)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=list(key),
            set_={
                name: getattr(model, name) + getattr(statement.excluded, name) for name in counts
            },
        )
    )


def domains_of_messages(message_ids: Iterable[int]) -> dict[int, str]:
    """The recipient domain of each of these messages whose contact is still there."""
    from campaigns.models import Message
    from subscribers.models import Contact

    ids = sorted(set(message_ids))
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        for message_id, email in db.session.execute(
            select(Message.id, Contact.email)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.id.in_(ids[start : start + 500]))
        ):
            domain = domain_of(email)
            if domain is not None:
                found[int(message_id)] = domain
    return found


def forget_identified(message_ids: Any) -> None:
    """Take the human identified events of these messages (a select of ids) out of the domain
    figures, before erasure unlinks them: what is left is what the events still say."""
    from campaigns.models import Message
    from subscribers.models import Contact
    from tracking.models import TrackingEvent

    deltas = Deltas()
    rows = db.session.execute(
        select(
            TrackingEvent.account_id,
            TrackingEvent.campaign_id,
            Contact.email,
            TrackingEvent.kind,
            func.count(),
            func.count(distinct(TrackingEvent.message_id)),
        )
        .join(Message, Message.id == TrackingEvent.message_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(
            TrackingEvent.message_id.in_(message_ids),
            TrackingEvent.is_machine.is_(False),
            TrackingEvent.kind.in_(SERIES_KINDS),
        )
        .group_by(
            TrackingEvent.account_id, TrackingEvent.campaign_id, Contact.email, TrackingEvent.kind
        )
    ).all()
    for account, campaign, email, kind, total, messages in rows:
        domain = domain_of(email)
        if domain is None:
            continue
        entry = deltas.domain[(int(campaign), domain, str(kind))]
        entry[0] = int(account)
        entry[1] -= int(total)
        entry[2] -= int(messages)
    deltas.apply()
