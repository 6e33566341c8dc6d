"""Who a campaign may go to: the one place that turns lists and segments into recipients.

Campaign sending reads its audience only through :func:`audience_contact_ids` (the count before
sending through :func:`audience_contacts`, the same people). Suppression is checked per message
at send time, so an address suppressed after the campaign started is still skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select, exists, select, union

from privacy import policy
from subscribers.models import Contact, MailingList, Segment, Subscription
from subscribers.segments import segment_condition


def _segment_members(account_id: int, segment_ids: Sequence[int]) -> list[Select[Any]]:
    """One select per segment of the account: its matches that are subscribed to at least one
    of the account's lists (a segment never reaches someone who consented to nothing)."""
    from accounts.queries import account_time_zone
    from core import db

    segments = db.session.scalars(
        select(Segment).where(Segment.account_id == account_id, Segment.id.in_(list(segment_ids)))
    ).all()
    zone = account_time_zone(account_id)
    subscribed_somewhere = exists(
        select(Subscription.id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.contact_id == Contact.id,
            Subscription.status == "subscribed",
            MailingList.account_id == account_id,
        )
    )
    return [
        select(Contact.id).where(
            Contact.account_id == account_id,
            policy.may_process_condition(Contact),
            subscribed_somewhere,
            segment_condition(segment.match, segment.rules, zone),
        )
        for segment in segments
    ]


def audience_contact_ids(
    account_id: int, list_ids: Sequence[int], segment_ids: Sequence[int] = ()
) -> Select[Any]:
    """Distinct ids of the account's contacts subscribed to any of ``list_ids`` or matching any
    of ``segment_ids``, and that :func:`privacy.policy.may_process` allows (not restricted,
    objecting or withdrawn). Deduplicated: a contact on two lists
    (or on a list and in a segment) appears once. Another account's list or segment adds
    nobody."""
    return audience_contacts(account_id, list_ids, segment_ids, Contact.id)


def audience_contacts(
    account_id: int, list_ids: Sequence[int], segment_ids: Sequence[int], *columns: Any
) -> Select[Any]:
    """The contacts of :func:`audience_contact_ids` (the same people, each once), selecting
    ``columns`` of ``Contact``: one pass over the subscriptions for a single list (its
    unique (list, contact) index already makes each contact appear once), so for one list and
    no segment the columns may be aggregates over the audience."""
    by_list = (
        select(Contact.id)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(
            Contact.account_id == account_id,
            Subscription.list_id.in_(list(list_ids)),
            Subscription.status == "subscribed",
            policy.may_process_condition(Contact),
        )
    )
    if not segment_ids:
        chosen = by_list.with_only_columns(*columns)
        return chosen if len(set(list_ids)) == 1 else chosen.distinct()
    combined = union(by_list, *_segment_members(account_id, segment_ids)).subquery()
    if list(columns) == [Contact.id]:
        return select(combined.c.id)
    return select(*columns).join(combined, combined.c.id == Contact.id)


def emails_in_chunks(rows: Select[int, str], size: int = 2000) -> Iterator[list[str]]:
    """The addresses of the ``(Contact.id, Contact.email)`` rows of ``rows``, ``size`` at a time
    in id order (keyset paging: each chunk is one indexed read, whatever the table's size)."""
    from core import db

    last_id = 0
    while True:
        chunk = db.session.execute(
            rows.where(Contact.id > last_id).order_by(Contact.id).limit(size)
        ).all()
        if not chunk:
            return
        yield [email for _, email in chunk]
        last_id = chunk[-1][0]
