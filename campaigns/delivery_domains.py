"""A campaign's delivery by recipient domain (messages sent and failed per domain), for its
report: counted from the messages while the campaign sends, kept in
:class:`~campaigns.models.CampaignDomainCount` once it is over (a million messages take about
0.4 s to count, on every view of the report otherwise).

The send reconciler keeps the counts when it keeps a campaign's final message counts
(:func:`campaigns.progress_counts.refresh_due`). An erasure takes the person's messages out
(:func:`remove_person`, called where the messages stop naming the person), so the kept figures
stay what counting the messages would give: an erased person's message no longer counts under
any domain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, func, select, update

from campaigns.models import CampaignDomainCount, Message
from core import db
from subscribers.models import Contact


def _domain_of_contact() -> ColumnElement[str]:
    """The text after the last "@" of the contact's address (lower-cased in Python after, so
    both databases agree on non-ASCII domains)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # The expression the domain statistics of contacts are on (migration 0329): the
        # planner hashes into the few domains instead of sorting every message.
        return func.split_part(Contact.email, "@", -1)
    # SQLite has no split_part: rtrim strips every character but "@" from the right, leaving
    # the address up to its last "@", which replace then takes off.
    before = func.rtrim(Contact.email, func.replace(Contact.email, "@", ""))
    return func.replace(Contact.email, before, "")


def _counted(rows: Iterable[tuple[object, object, int]]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name, status, count in rows:
        if status not in ("sent", "failed"):
            continue
        entry = found.setdefault(str(name).lower(), [0, 0])
        entry[0 if status == "sent" else 1] += int(count)
    return found


def _count_messages(campaign_id: int) -> dict[str, list[int]]:
    domain = _domain_of_contact()
    with db.postgres_settings(db.LARGE_AGGREGATE_SETTINGS):
        rows = db.session.execute(
            select(domain, Message.status, func.count())
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.campaign_id == campaign_id)
            .group_by(domain, Message.status)
        ).all()
    return _counted((name, str(status), count) for name, status, count in rows)


def delivery_by_domain(campaign_id: int) -> dict[str, tuple[int, int]]:
    """``{domain: (sent, failed)}`` of the campaign's messages whose contact is still held:
    the kept figures when the campaign is over and they were kept, else counted now."""
    kept = db.session.execute(
        select(
            CampaignDomainCount.domain, CampaignDomainCount.sent, CampaignDomainCount.failed
        ).where(CampaignDomainCount.campaign_id == campaign_id)
    ).all()
    if kept:
        return {domain: (sent, failed) for domain, sent, failed in kept if sent or failed}
    return {name: (sent, failed) for name, (sent, failed) in _count_messages(campaign_id).items()}


def keep(campaign_id: int) -> None:
    """Count the campaign's delivery by domain now and keep it (replacing any kept before).
    For a campaign that is over: its messages' statuses no longer change. No commit."""
    counted = _count_messages(campaign_id)
    db.session.execute(
        delete(CampaignDomainCount).where(CampaignDomainCount.campaign_id == campaign_id)
    )
    db.session.add_all(
        CampaignDomainCount(campaign_id=campaign_id, domain=name[:255], sent=sent, failed=failed)
        for name, (sent, failed) in counted.items()
    )
    db.session.flush()


def remove_person(contact_ids: Iterable[int]) -> None:
    """Take these contacts' messages out of the kept figures (before an erasure unlinks the
    messages from them). No commit."""
    ids = list(contact_ids)
    if not ids:
        return
    domain = _domain_of_contact()
    rows = db.session.execute(
        select(Message.campaign_id, domain, Message.status, func.count())
        .join(Contact, Contact.id == Message.contact_id)
        .where(
            Message.contact_id.in_(ids),
            Message.campaign_id.in_(select(CampaignDomainCount.campaign_id)),
        )
        .group_by(Message.campaign_id, domain, Message.status)
    ).all()
    taken: Counter[tuple[int, str, str]] = Counter()
    for campaign, name, status, count in rows:
        taken[(int(campaign), str(name).lower()[:255], str(status))] += int(count)
    for (campaign_id, name, outcome), count in taken.items():
        if outcome not in ("sent", "failed"):
            continue
        column = CampaignDomainCount.sent if outcome == "sent" else CampaignDomainCount.failed
        db.session.execute(
            update(CampaignDomainCount)
            .where(
                CampaignDomainCount.campaign_id == campaign_id, CampaignDomainCount.domain == name
            )
            .values({column: column - count})
            .execution_options(synchronize_session=False)
        )
