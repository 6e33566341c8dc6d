"""Campaign figures: sends, opens, clicks, unsubscribes. Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import distinct, func, select

from campaigns.models import Link, Message
from core import db
from tracking.models import TrackingEvent


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

    @property
    def progress_percent(self) -> int:
        done = self.sent + self.failed + self.skipped
        return int(100 * done / self.total) if self.total else 100


def campaign_stats(campaign_id: int) -> CampaignStats:
    """The campaign's delivery and engagement figures (human counts; machine ones beside)."""
    status_counts = dict(
        db.session.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.status)
        ).all()
    )
    human = TrackingEvent.is_machine.is_(False)
    rows = db.session.execute(
        select(
            TrackingEvent.kind,
            TrackingEvent.is_machine,
            func.count(),
            func.count(distinct(TrackingEvent.message_id)),
        )
        .where(TrackingEvent.campaign_id == campaign_id)
        .group_by(TrackingEvent.kind, TrackingEvent.is_machine)
    ).all()
    counts: dict[tuple[str, bool], tuple[int, int]] = {
        (kind, bool(machine)): (int(total), int(unique)) for kind, machine, total, unique in rows
    }

    def total(kind: str, machine: bool = False) -> int:
        return counts.get((kind, machine), (0, 0))[0]

    def unique(kind: str) -> int:
        return counts.get((kind, False), (0, 0))[1]

    per_link = db.session.execute(
        select(Link.url, func.count(TrackingEvent.id))
        .outerjoin(TrackingEvent, (TrackingEvent.link_id == Link.id) & human)
        .where(Link.campaign_id == campaign_id)
        .group_by(Link.id, Link.url)
        .order_by(Link.position)
    ).all()
    return CampaignStats(
        total=sum(int(v) for v in status_counts.values()),
        sent=int(status_counts.get("sent", 0)),
        pending=int(status_counts.get("pending", 0)) + int(status_counts.get("sending", 0)),
        failed=int(status_counts.get("failed", 0)),
        skipped=int(status_counts.get("skipped", 0)),
        opens=total("open"),
        unique_opens=unique("open"),
        clicks=total("click"),
        unique_clicks=unique("click"),
        unsubscribes=total("unsubscribe") + total("unsubscribe", True),
        machine_opens=total("open", True),
        machine_clicks=total("click", True),
        clicks_per_link=[(url, int(n)) for url, n in per_link],
    )
