"""The campaign list: search by name and subject, filter by status, one page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, or_, select

from campaigns.models import Campaign, CampaignStatus
from core.pagination import Page, paginate
from core.sqltext import folded

PAGE_SIZE = 25
#: The statuses a person can filter on, in the order a campaign goes through them.
# The filter offers every status but the moment between scheduled and sending.
STATUSES = tuple(status for status in CampaignStatus if status is not CampaignStatus.STARTING)


@dataclass(frozen=True)
class CampaignFilter:
    """What the campaign list filters on (every part optional)."""

    q: str = ""  # part of the name or the subject, any case
    status: str = ""  # one of STATUSES

    @property
    def active(self) -> bool:
        """Whether anything is filtered (an empty result then means "no match")."""
        return bool(self.q.strip() or self.status)


def search_campaigns(account_id: int, filters: CampaignFilter, page: int = 1) -> Page[Campaign]:
    """The account's campaigns matching ``filters``, newest first, ``PAGE_SIZE`` a page; a
    page past the end gives the last one."""
    return paginate(campaign_search(account_id, filters), Campaign.id.desc(), page, PAGE_SIZE)


def campaign_search(account_id: int, filters: CampaignFilter) -> Select[Campaign]:
    """The query of the account's campaigns matching ``filters`` (unordered; the campaign list
    pages it by number, the API by cursor). Name and subject match case-insensitively in every
    script (``%`` and ``_`` are plain characters)."""
    query = select(Campaign).where(Campaign.account_id == account_id)
    needle = filters.q.strip().lower()
    if needle:
        query = query.where(
            or_(
                folded(Campaign.name).contains(needle, autoescape=True),
                folded(Campaign.subject).contains(needle, autoescape=True),
            )
        )
    if filters.status in STATUSES:
        # "starting" is the moment between scheduled and sending: shown as sending.
        wanted = (
            (CampaignStatus.SENDING, CampaignStatus.STARTING)
            if filters.status == CampaignStatus.SENDING
            else (filters.status,)
        )
        query = query.where(Campaign.status.in_(wanted))
    return query
