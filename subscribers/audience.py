"""Who a campaign may go to: the one place that turns lists into recipients.

Campaign sending reads its audience only through :func:`audience_contact_ids`. Suppression is
checked per message at send time (it holds hashes, so it cannot be joined here cheaply).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select

from subscribers.models import Contact, Subscription


def audience_contact_ids(account_id: int, list_ids: Sequence[int]) -> Select[int]:
    """Distinct ids of the account's contacts subscribed to any of ``list_ids`` and not
    restricted, objecting or having withdrawn consent (privacy). Deduplicated: a contact on two
    lists appears once."""
    return (
        select(Contact.id)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(
            Contact.account_id == account_id,
            Subscription.list_id.in_(list(list_ids)),
            Subscription.status == "subscribed",
            Contact.restricted_at.is_(None),
            Contact.objected_at.is_(None),
            Contact.consent_withdrawn_at.is_(None),  # privacy: consent withdrawal (art. 7(3))
        )
        .distinct()
    )
