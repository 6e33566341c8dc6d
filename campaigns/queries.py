"""Reads about campaigns, always scoped to one account."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.models import Campaign, Link
from core import db


def list_campaigns(account_id: int, limit: int = 100) -> list[Campaign]:
    """The account's campaigns, newest first."""
    return list(
        db.session.scalars(
            select(Campaign)
            .where(Campaign.account_id == account_id)
            .order_by(Campaign.id.desc())
            .limit(limit)
        )
    )


def campaign_links(campaign_id: int) -> list[Link]:
    """The tracked links of a campaign, in body order."""
    return list(
        db.session.scalars(
            select(Link).where(Link.campaign_id == campaign_id).order_by(Link.position)
        )
    )
