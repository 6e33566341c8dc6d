"""Who a campaign may go to: the one place that turns lists and segments into recipients.

Campaign sending reads its audience only through :func:`audience_contact_ids`. Suppression is
checked per message at send time (it holds hashes, so it cannot be joined here cheaply).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    parts = [by_list, *(_segment_members(account_id, segment_ids) if segment_ids else [])]
    if len(parts) == 1:
        return by_list.distinct()
    combined = union(*parts).subquery()
    return select(combined.c.id)
