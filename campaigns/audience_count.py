"""How many people a campaign will reach, counted before it is sent.

The count follows the sender's own path: :func:`subscribers.audience.audience_contact_ids`
(deduplicated; unsubscribed, restricted, objecting and withdrawn contacts left out) gives the
contacts :func:`campaigns.services.start` makes a message for, and of those the sender skips
the ones :func:`subscribers.suppression.suppressed_emails` or
:func:`privacy.engine_gate.engine_suppressed` name. So ``recipients`` is the number of
messages that will be sent if nothing changes before the send.

On PostgreSQL one aggregate query counts the audience per domain and, per domain, the
addresses that are suppressed: the account's and the platform's suppressions by the address
hash each contact keeps (``contacts.address_hash``), and so are the engine's: the engine gate
keeps the set of addresses the engine suppresses by that same hash
(:func:`privacy.engine_gate.engine_verdict_in`). Only rows whose hash is not stored yet are
hashed by the database (:mod:`core.sqlhash`). The blocked-domain rule then runs in Python on
the distinct domains, and the few addresses SQL cannot decide exactly (non-ASCII without a
stored hash) go through the sender's Python rules. On
SQLite (the embedded default, for small audiences) every address goes through those rules, in
chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select

from campaigns.models import Campaign
from core import db
from core.recent import EDITING_SECONDS, remembered
from privacy import engine_gate
from subscribers.audience import audience_contacts, emails_in_chunks
from subscribers.models import Contact
from subscribers.suppression import (
    blocked_domains_of,
    suppressed_emails,
    suppressed_hash_condition,
    suppressed_hash_in,
)

_CHUNK = 2000
#: Above this many contacts in the account the campaign page answers first and fetches its
#: recipient count and pre-send checks after (they read every recipient: about a second for a
#: million); below it they are on the page itself.
COUNT_AFTER_PAGE_CONTACTS = 50_000


@dataclass(frozen=True)
class AudienceCount:
    """``recipients`` will get the message; ``suppressed`` are in the audience but on a
    suppression list (their messages are skipped at send time)."""

    recipients: int
    suppressed: int

    @property
    def audience(self) -> int:
        """Contacts in the audience: the messages :func:`campaigns.services.start` creates."""
        return self.recipients + self.suppressed


def _count(query: Select[*tuple[Any, ...]]) -> int:
    return int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _suppressed_among(account_id: int, emails: Sequence[str]) -> int:
    """How many of ``emails`` the sender's own suppression checks would skip."""
    found = 0
    for start in range(0, len(emails), _CHUNK):
        chunk = emails[start : start + _CHUNK]
        skipped = set(suppressed_emails(account_id, chunk))
        skipped |= engine_gate.engine_suppressed(account_id, chunk)
        found += sum(1 for email in chunk if email in skipped)
    return found


def _suppressed_in_python(account_id: int, emails: Select[int, str]) -> int:
    """How many of the ``(id, email)`` rows the sender's own suppression checks would skip."""
    return sum(_suppressed_among(account_id, chunk) for chunk in emails_in_chunks(emails, _CHUNK))


@dataclass(frozen=True)
class _Rules:
    """The count's conditions on one address column and its stored hash (PostgreSQL)."""

    by_account: ColumnElement[bool]  # suppressed by the account or the platform
    by_engine: ColumnElement[bool]  # suppressed by the engine (ASCII addresses)
    undecided: ColumnElement[bool]  # left to the sender's Python checks


def _rules(account_id: int, email: Any, stored: Any) -> _Rules:
    ascii_only = func.octet_length(email) == func.length(email)
    by_account = or_(
        and_(stored.is_not(None), suppressed_hash_in(account_id, stored)),
        and_(stored.is_(None), ascii_only, suppressed_hash_condition(account_id, email)),
    )
    # The engine's suppressed addresses, by the hash the contact keeps (the gate keeps that
    # set); a row whose hash is not stored yet is hashed under the engine's key (ASCII only).
    by_engine = or_(
        and_(stored.is_not(None), engine_gate.engine_verdict_in(account_id, stored)),
        and_(
            stored.is_(None), ascii_only, engine_gate.engine_suppressed_condition(account_id, email)
        ),
    )
    # Non-ASCII without a stored hash (SQL lower is not Python's there): Python decides.
    undecided = and_(
        func.octet_length(email) != func.length(email), stored.is_(None), not_(by_account)
    )
    return _Rules(by_account, by_engine, undecided)


def _count_in_sql(account_id: int, audience: Select[Any]) -> AudienceCount:
    """PostgreSQL: the count in one aggregate over the ``(email, address_hash)`` rows, per
    domain (parallel on a million). A stored address hash is joined with the suppressions and
    with the engine's suppressed addresses; a row whose hash is not stored yet (before the
    backfill) is hashed by the database when ASCII. The few rows SQL cannot decide exactly
    (non-ASCII without a stored hash) are read again, through a partial index of non-ASCII
    addresses, and go through the sender's Python checks; the blocked-domain rule runs on the
    distinct domains."""
    rows = audience.subquery()
    rules = _rules(account_id, rows.c.email, rows.c.address_hash)
    # The text after the last "@", as the blocked-domain rule reads it (a negative position
    # counts from the end: PostgreSQL 14 and later; several times cheaper than a regex).
    domain = func.split_part(rows.c.email, "@", -1)
    with db.postgres_settings(db.LARGE_AGGREGATE_SETTINGS):
        per_domain = db.session.execute(
            select(
                domain,
                func.count(),
                func.count().filter(or_(rules.by_account, rules.by_engine)),
                func.count().filter(rules.undecided),
            ).group_by(domain)
        ).all()
    blocked = blocked_domains_of(f"x@{name}" for name, _, _, _ in per_domain)
    total = suppressed = 0
    for name, in_domain, decided, _ in per_domain:
        total += int(in_domain)
        suppressed += int(in_domain) if f"x@{name}" in blocked else int(decided)
    if any(undecided and f"x@{name}" not in blocked for name, _, _, undecided in per_domain):
        on_contacts = _rules(account_id, Contact.email, Contact.address_hash)
        left = db.session.execute(
            audience.with_only_columns(Contact.email).where(on_contacts.undecided)
        ).scalars()
        suppressed += _suppressed_among(
            account_id, [email for email in left if f"x@{email.rpartition('@')[2]}" not in blocked]
        )
    return AudienceCount(total - suppressed, suppressed)


def count_audience(
    account_id: int, list_ids: Sequence[int], segment_ids: Sequence[int] = ()
) -> AudienceCount:
    """The exact number of recipients a campaign to ``list_ids`` and ``segment_ids`` would
    have now (see the module docstring). Reads only."""
    if not list_ids and not segment_ids:
        return AudienceCount(0, 0)
    if db.session.get_bind().dialect.name == "postgresql":
        return _count_in_sql(
            account_id,
            audience_contacts(
                account_id, list_ids, segment_ids, Contact.email, Contact.address_hash
            ),
        )
    rows = audience_contacts(account_id, list_ids, segment_ids, Contact.id, Contact.email)
    total = _count(rows)
    if not total:
        return AudienceCount(0, 0)
    suppressed = _suppressed_in_python(account_id, rows)
    return AudienceCount(total - suppressed, suppressed)


def count_for_campaign(campaign: Campaign) -> AudienceCount:
    """:func:`count_audience` for the lists and segments the campaign is set to."""
    from campaigns.services import campaign_list_ids, campaign_segment_ids

    return count_audience(
        campaign.account_id, campaign_list_ids(campaign.id), campaign_segment_ids(campaign.id)
    )


def recent_count_for_campaign(campaign: Campaign) -> AudienceCount:
    """:func:`count_for_campaign`, reusing this process's count of the same audience from the
    last minute (:data:`core.recent.EDITING_SECONDS`): the campaign page is reloaded for each
    preview, and a count of a million contacts takes seconds. The confirmation always counts
    afresh."""
    from campaigns.services import campaign_list_ids, campaign_segment_ids

    lists = tuple(campaign_list_ids(campaign.id))
    segments = tuple(sorted(campaign_segment_ids(campaign.id)))
    return remembered(
        "audience_counts",
        (campaign.account_id, lists, segments),
        lambda: count_audience(campaign.account_id, lists, segments),
        EDITING_SECONDS,
    )


def counted_after_page(account_id: int) -> bool:
    """Whether the account holds more than :data:`COUNT_AFTER_PAGE_CONTACTS` contacts, so the
    campaign page shows its counts once they are ready instead of waiting for them. Reads at
    most that many index entries."""
    capped = (
        select(Contact.id)
        .where(Contact.account_id == account_id)
        .limit(COUNT_AFTER_PAGE_CONTACTS + 1)
    )
    return _count(capped) > COUNT_AFTER_PAGE_CONTACTS


def changed_materially(confirmed: int, now: int) -> bool:
    """Whether a recipient count moved enough since the person confirmed it that they must
    look again: by more than 1 % of what they confirmed (any change under 100)."""
    return abs(now - confirmed) > confirmed // 100
