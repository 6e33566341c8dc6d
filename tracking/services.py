"""Storing tracking hits through the privacy layer, event retention, and the unsubscribe action
(one per message, undoable for a few minutes).

:func:`ingest` is the only writer of tracking events. For each batch it gathers, in a few
queries, what the privacy layer needs (account and campaign settings, each named message's
contact state and delivery time), asks :func:`privacy.policy.decide` what each hit may become
and :func:`privacy.policy.classify_machine` whether a machine made it, then inserts the events
and adds them to the roll-ups (:mod:`tracking.rollups`) in the same transaction.
Hit ids are unique, so ingesting the same batch twice stores it once and counts it once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from flask import current_app
from sqlalchemy import (
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError

from accounts.models import Account
from campaigns import queries as campaign_queries
from campaigns.models import Campaign, Message
from core import db
from core.db import utcnow
from core.signing import BadTokenError, Purpose, sign_timed, unsign_timed
from privacy import engine_gate, policy
from subscribers import services as subscriber_services
from subscribers.models import Contact, Subscription
from tracking import partitions, rollups
from tracking.hits import Hit
from tracking.models import (
    HUMAN_IDENTIFIED,
    MACHINE_EVIDENCE,
    MessageUnsubscribe,
    TrackingEvent,
    UnsubscribeStatus,
)
from webhooks import events as webhook_events
from webhooks.models import EventType

__all__ = ["Hit", "apply_event_retention", "ingest", "ingest_isolating"]

from core.logsafe import log_failure

log = logging.getLogger(__name__)

#: Distinct links fetched by one source within the window that make a burst.
BURST_LINKS = 3


def _forward_to_engine(signals: list[policy.EngineSignal]) -> None:
    """Hand a committed batch's engine signals (only what :func:`privacy.policy.engine_signal`
    allowed) to the engine's gate. A failure there is logged and never loses or blocks a hit."""
    if not signals:
        return
    try:
        engine_gate.record_engagements_soon(signals)
    except Exception as exc:
        log_failure(log, exc, "the optimisation engine refused %d signals", len(signals))


@dataclass(frozen=True)
class _MessageInfo:
    campaign_id: int
    sent_at: datetime | None
    contact: policy.ContactState
    email: str | None
    contact_id: int | None = None


def _members(column: Any, values: Sequence[Any], chunk: int = 500) -> Iterator[Any]:
    """Conditions ``column IN values`` that together cover ``values``. On PostgreSQL one
    ``= ANY(array)``: the same statement text whatever the count, so SQLAlchemy and psycopg
    reuse their compiled forms instead of writing out a parameter per value. Elsewhere
    expanding INs of ``chunk`` values (SQLite limits a statement's parameters)."""
    if db.session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
        return
    for start in range(0, len(values), chunk):
        yield column.in_(values[start : start + chunk])


def _load_messages(message_ids: set[int], campaign_ids: set[int]) -> dict[int, _MessageInfo]:
    """The batch's messages with their contacts' states; ``campaign_ids``, the campaigns the
    batch's hits name, bound the single-list audiences read to those campaigns (all of them
    were grouped per batch before)."""
    found: dict[int, _MessageInfo] = {}
    ids = sorted(message_ids)
    # Columns, not Contact entities: a batch names hundreds of messages, and loading each
    # contact into the session cost more than the rest of the ingest.
    state_columns = [getattr(Contact, name) for name in policy.CONTACT_READ_COLUMNS]
    single_list = campaign_queries.single_list_audiences(sorted(campaign_ids))
    for matching in _members(Message.id, ids):
        rows = db.session.execute(
            select(
                Message.id,
                Message.campaign_id,
                Message.sent_at,
                Subscription.status,
                Contact.id.label("contact_id"),
                Contact.email,
                *state_columns,
            )
            .outerjoin(single_list, single_list.c.campaign_id == Message.campaign_id)
            .outerjoin(Contact, Contact.id == Message.contact_id)
            .outerjoin(
                Subscription,
                and_(
                    Subscription.contact_id == Message.contact_id,
                    Subscription.list_id == single_list.c.list_id,
                ),
            )
            .where(matching)
        ).all()
        for row in rows:
            contact = row if row.contact_id is not None else None
            found[row.id] = _MessageInfo(
                campaign_id=row.campaign_id,
                sent_at=row.sent_at,
                contact=policy.contact_state(contact, row.status),
                email=row.email,
                contact_id=row.contact_id,
            )
    return found


def _source(hit: Hit) -> tuple[Any, ...] | None:
    """Who made a hit, as far as reduced values tell: the message, else prefix and agent."""
    if hit.message_id is not None:
        return ("message", hit.message_id)
    if hit.ip_prefix:
        return ("network", hit.campaign_id, hit.ip_prefix, hit.ua_class)
    return None


def _evidence_times(hits: list[Hit], window: float) -> dict[tuple[Any, ...], list[datetime]]:
    """Per source, the times at which it showed itself a machine (honeypot, HEAD, a burst)."""
    by_source: dict[tuple[Any, ...], list[Hit]] = defaultdict(list)
    for hit in hits:
        source = _source(hit)
        if source is not None:
            by_source[source].append(hit)
    evidence: dict[tuple[Any, ...], list[datetime]] = defaultdict(list)
    span = timedelta(seconds=window)
    for source, source_hits in by_source.items():
        for hit in source_hits:
            if hit.kind == "honeypot" or hit.method == "HEAD":
                evidence[source].append(hit.occurred_at)
        clicks = sorted((h for h in source_hits if h.link_id is not None), key=_time)
        for index, hit in enumerate(clicks):
            links = {h.link_id for h in clicks[index:] if h.occurred_at - hit.occurred_at <= span}
            if len(links) >= BURST_LINKS:
                evidence[source].append(hit.occurred_at)
    # Honeypot or HEAD hits of earlier batches, for the messages named here.
    message_ids = [s[1] for s in by_source if s[0] == "message"]
    if message_ids:
        earliest = min(h.occurred_at for h in hits) - span
        for matching in _members(TrackingEvent.message_id, message_ids):
            rows = db.session.execute(
                select(TrackingEvent.message_id, TrackingEvent.occurred_at).where(
                    matching,
                    # Evidence that a source is a machine: its other hits close in time are too.
                    text(MACHINE_EVIDENCE),
                    TrackingEvent.occurred_at >= earliest,
                )
            ).all()
            for message_id, occurred_at in rows:
                evidence[("message", message_id)].append(occurred_at)
    return evidence


def _time(hit: Hit) -> datetime:
    return hit.occurred_at


def _seen_before(
    kind_pairs: set[tuple[int, str]], link_pairs: set[tuple[int, int]]
) -> tuple[set[tuple[int, str]], set[tuple[int, int]]]:
    """Of these (message, kind) and (message, link) pairs, those that already have a human
    event (elsewhere than on PostgreSQL, possibly more pairs of the same messages)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return (
            _pairs_with_human_event(kind_pairs, TrackingEvent.kind),
            _pairs_with_human_event(link_pairs, TrackingEvent.link_id, kind="click"),
        )
    kinds: set[tuple[int, str]] = set()
    links: set[tuple[int, int]] = set()
    ids = sorted({message_id for message_id, _ in kind_pairs | link_pairs})
    for matching in _members(TrackingEvent.message_id, ids):
        rows = db.session.execute(
            select(TrackingEvent.message_id, TrackingEvent.kind, TrackingEvent.link_id)
            .where(
                matching,
                TrackingEvent.is_machine.is_(False),
            )
            .distinct()
        ).all()
        for message_id, kind, link_id in rows:
            assert message_id is not None
            kinds.add((message_id, kind))
            if link_id is not None:
                links.add((message_id, link_id))
    return kinds, links


def _pairs_with_human_event(
    pairs: set[tuple[int, Any]], column: Any, kind: str | None = None
) -> set[tuple[int, Any]]:
    """PostgreSQL: the (message, value of ``column``) pairs with a human event, one probe of
    the partial index per pair however long the message's history."""
    if not pairs:
        return set()
    messages, values = zip(*pairs, strict=True)
    candidates = (
        func.unnest(
            bindparam(None, list(messages), type_=postgresql.ARRAY(Integer)),
            bindparam(None, list(values), type_=postgresql.ARRAY(column.type)),
        )
        .table_valued("candidate_message", "candidate_value")
        .render_derived()
    )
    human = select(TrackingEvent.id).where(
        TrackingEvent.message_id == candidates.c.candidate_message,
        column == candidates.c.candidate_value,
        text(HUMAN_IDENTIFIED),
    )
    if kind is not None:
        human = human.where(TrackingEvent.kind == kind)
    rows = db.session.execute(
        select(candidates.c.candidate_message, candidates.c.candidate_value).where(exists(human))
    )
    return {(message_id, value) for message_id, value in rows}


def _stored_uids(uids: list[str]) -> set[str]:
    found: set[str | None] = set()
    for matching in _members(TrackingEvent.hit_uid, uids):
        found.update(db.session.scalars(select(TrackingEvent.hit_uid).where(matching)).all())
    return {uid for uid in found if uid}


def _insert(table: Any, dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_EVENT_COLUMNS = (
    "account_id",
    "campaign_id",
    "link_id",
    "message_id",
    "kind",
    "occurred_at",
    "is_machine",
    "machine_reason",
    "ua_class",
    "hit_uid",
)


@functools.cache
def _events_from_arrays() -> Any:
    """PostgreSQL: one INSERT of a whole batch from one array per column (``unnest``), which
    costs both sides a fraction of a row-by-row ``executemany``. Same conflict rule."""
    table = cast(Table, TrackingEvent.__table__)
    columns = [
        func.unnest(bindparam(name, type_=postgresql.ARRAY(table.c[name].type)))
        for name in _EVENT_COLUMNS
    ]
    return (
        postgresql.insert(table)
        .from_select(list(_EVENT_COLUMNS), select(*columns))
        .on_conflict_do_nothing(index_elements=["hit_uid", "occurred_at"])
    )


def ingest(hits: Iterable[Hit]) -> int:
    """Store a batch of hits as the privacy layer decides; return how many events were written.

    Hits of unknown campaigns, or naming a message of another campaign, are dropped. A hit
    already stored (same hit id) is neither stored nor counted again. Commits once.
    """
    batch = list(hits)
    if not batch:
        return 0
    app = current_app
    window = float(app.config["TRACKING_MACHINE_WINDOW_SECONDS"])
    extra_networks = tuple(
        n.strip() for n in str(app.config["TRACKING_MACHINE_NETWORKS"]).split(",") if n
    )
    campaigns = {
        campaign.id: (campaign, account)
        for campaign, account in db.session.execute(
            select(Campaign, Account)
            .join(Account, Account.id == Campaign.account_id)
            .where(Campaign.id.in_({h.campaign_id for h in batch}))
        ).all()
    }
    messages = _load_messages(
        {h.message_id for h in batch if h.message_id is not None},
        {h.campaign_id for h in batch if h.message_id is not None},
    )
    batch_evidence = _evidence_times(batch, window)
    recent = _recent_sources()
    evidence: dict[tuple[Any, ...], list[datetime]] = defaultdict(list)
    with recent.lock:
        for key, times in batch_evidence.items():
            evidence[key].extend(times)
        for hit in batch:
            known = _source(hit)
            if known is not None and known in recent.evidence:
                evidence[known].extend(recent.evidence[known])
    seen_kinds, seen_links = _seen_before(
        {(h.message_id, h.kind) for h in batch if h.message_id in messages},
        {
            (h.message_id, h.link_id)
            for h in batch
            if h.message_id in messages and h.link_id is not None
        },
    )
    span = timedelta(seconds=window)
    sources: dict[str, tuple[Any, ...] | None] = {}

    rows: list[dict[str, Any]] = []
    signals: dict[str, policy.EngineSignal] = {}
    named: list[tuple[Hit, int, _MessageInfo, bool]] = []
    for hit in batch:
        found = campaigns.get(hit.campaign_id)
        if found is None:
            continue
        campaign, account = found
        message = messages.get(hit.message_id) if hit.message_id is not None else None
        if hit.message_id is not None and (message is None or message.campaign_id != campaign.id):
            continue
        tracking_ctx = policy.TrackingContext(
            kind=hit.kind,
            individual_tracking=account.individual_tracking,
            track_opens=campaign.track_opens,
            track_clicks=campaign.track_clicks,
            identified_token=hit.message_id is not None,
            contact=message.contact if message is not None else None,
        )
        decision = policy.decide(tracking_ctx)
        if decision is policy.Decision.DROP:
            continue
        source = sources[hit.uid] = _source(hit)
        reason = policy.classify_machine(
            policy.MachineEvidence(
                ua_class=hit.ua_class,
                ip_prefix=hit.ip_prefix,
                method=hit.method,
                honeypot=hit.kind == "honeypot",
                seconds_since_delivery=(
                    (hit.occurred_at - message.sent_at).total_seconds()
                    if message is not None and message.sent_at is not None
                    else None
                ),
                burst=source is not None
                and any(abs(hit.occurred_at - t) <= span for t in evidence.get(source, ())),
            ),
            window,
            extra_networks,
        )
        identified = decision is policy.Decision.IDENTIFIED
        if policy.may_name_in_webhook(decision, hit.kind) and message is not None:
            named.append((hit, account.id, message, reason is not None))
        rows.append(
            {
                "account_id": account.id,
                "campaign_id": campaign.id,
                "link_id": hit.link_id,
                "message_id": hit.message_id if identified else None,
                "kind": hit.kind,
                "occurred_at": hit.occurred_at,
                "is_machine": reason is not None,
                "machine_reason": reason,
                "ua_class": hit.ua_class,
                "hit_uid": hit.uid,
            }
        )
        if identified and message is not None:
            signal = policy.engine_signal(
                policy.EngineContext(
                    tracking=tracking_ctx,
                    account_participates=account.engine_participation,
                    is_machine=reason is not None,
                    account_id=account.id,
                    message_id=hit.message_id,
                    occurred_at=hit.occurred_at,
                )
            )
            if signal is not None:
                signals[hit.uid] = signal

    dialect = db.session.get_bind().dialect.name
    # Hits already stored (a batch ingested again after a crash) are neither stored nor counted
    # again. One consumer ingests at a time (the buffer's lock); the unique index and ON
    # CONFLICT DO NOTHING keep the table right even if two ever overlap.
    already = _stored_uids([row["hit_uid"] for row in rows])
    rows = [row for row in rows if row["hit_uid"] not in already]
    if rows and dialect == "postgresql":
        db.session.execute(
            _events_from_arrays(), {name: [row[name] for row in rows] for name in _EVENT_COLUMNS}
        )
    elif rows:
        table = TrackingEvent.__table__
        db.session.connection().execute(
            _insert(table, dialect).on_conflict_do_nothing(
                index_elements=["hit_uid", "occurred_at"]
            ),
            rows,
        )
    inserted = {row["hit_uid"] for row in rows}
    domains = {
        message_id: domain
        for message_id, info in messages.items()
        if (domain := rollups.domain_of(info.email)) is not None
    }
    _add_to_aggregates(rows, seen_kinds, seen_links, domains)
    with recent.lock:
        _reclassify_earlier(recent, batch_evidence, inserted, span)
        for row in rows:
            origin = sources.get(row["hit_uid"])
            if origin is not None and not row["is_machine"]:
                recent.events[origin].append(
                    (row["occurred_at"], row["hit_uid"], row["first_kind"], row["first_link"])
                )
        for key, times in batch_evidence.items():
            recent.evidence[key].extend(times)
        newest = max(hit.occurred_at for hit in batch)
        recent.prune(newest, 3 * span)
    _emit_engagements([item for item in named if item[0].uid in inserted])
    db.session.commit()
    _forward_to_engine([signal for uid, signal in signals.items() if uid in inserted])
    return len(inserted)


_ENGAGEMENT_EVENTS = {"open": EventType.MESSAGE_OPENED, "click": EventType.MESSAGE_CLICKED}


def _emit_engagements(named: list[tuple[Hit, int, _MessageInfo, bool]]) -> None:
    """``message.opened`` / ``message.clicked`` for the identified hits just stored (only
    those ``policy.may_name_in_webhook`` allows: no per-person event without individual
    tracking, nor for a person who refused tracking). No commit."""
    for hit, account_id, message, is_machine in named:
        event_type = _ENGAGEMENT_EVENTS.get(hit.kind)
        if event_type is None or not webhook_events.subscribed(account_id, event_type):
            continue
        data = {
            "message_id": hit.message_id,
            "campaign_id": message.campaign_id,
            "contact_id": message.contact_id,
            "email": message.email,
            "link_id": hit.link_id,
            "occurred_at": hit.occurred_at.isoformat(timespec="seconds") + "Z",
            "machine": is_machine,
        }
        webhook_events.emit(account_id, event_type, data, contact_id=message.contact_id)


def ingest_isolating(hits: list[Hit]) -> int:
    """:func:`ingest`, but a hit the database refuses (a constraint, bad data) is set aside.

    A refused batch is split in halves until the refused hits are alone; they are logged (by
    kind and campaign only) and dropped, so one bad hit cannot block the buffer. A database
    that is unreachable raises, and the whole batch stays buffered for a retry.
    """
    try:
        return ingest(hits)
    except (IntegrityError, DataError, ValueError, TypeError) as exc:
        db.session.rollback()
        if len(hits) == 1:
            log_failure(
                log,
                exc,
                "dropped a %s hit of campaign %s the store refuses",
                hits[0].kind,
                hits[0].campaign_id,
            )
            return 0
    middle = len(hits) // 2
    return ingest_isolating(hits[:middle]) + ingest_isolating(hits[middle:])


def _add_to_aggregates(
    rows: list[dict[str, Any]],
    seen_kinds: set[tuple[int, str]],
    seen_links: set[tuple[int, int]],
    domains: dict[int, str],
) -> None:
    """Add stored events to the roll-ups (counts only; first human hits as uniques).

    Marks each row with ``first_kind`` / ``first_link`` (whether it was counted as unique).
    """
    deltas = rollups.Deltas()
    for row in sorted(rows, key=lambda r: r["occurred_at"]):
        machine = bool(row["is_machine"])
        message_id = row["message_id"]
        first_of_kind = first_of_link = False
        if message_id is not None and not machine:
            if (message_id, row["kind"]) not in seen_kinds:
                seen_kinds.add((message_id, row["kind"]))
                first_of_kind = True
            if row["link_id"] is not None and (message_id, row["link_id"]) not in seen_links:
                seen_links.add((message_id, row["link_id"]))
                first_of_link = True
        row["first_kind"], row["first_link"] = first_of_kind, first_of_link
        domain = domains.get(message_id) if message_id is not None else None
        deltas.count(row, machine, 1, first_of_kind, first_of_link, domain, row["machine_reason"])
    deltas.apply()


class _RecentSources:
    """What the ingest process remembers for a few windows of time: never stored anywhere.

    Per source (a message, or a campaign + prefix + agent class): its recent human events and
    the times it showed itself a machine. Evidence that arrives in a later batch than a
    source's other hits then reclassifies those hits as machine activity too.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[tuple[Any, ...], list[tuple[datetime, str, bool, bool]]] = defaultdict(
            list
        )
        self.evidence: dict[tuple[Any, ...], list[datetime]] = defaultdict(list)
        self.pruned_at: datetime | None = None

    def prune(self, now: datetime, keep: timedelta) -> None:
        """Forget what is older than ``keep`` (at most once per third of it)."""
        if self.pruned_at is not None and now - self.pruned_at < keep / 3:
            return
        self.pruned_at = now
        for store in (self.events, self.evidence):
            for source in list(store):
                kept = [item for item in store[source] if _when(item) >= now - keep]
                if kept:
                    store[source] = kept  # type: ignore[assignment]
                else:
                    del store[source]


def _when(item: Any) -> datetime:
    when: datetime = item[0] if isinstance(item, tuple) else item
    return when


def _recent_sources() -> _RecentSources:
    found = current_app.extensions.get("tracking_recent_sources")
    if found is None:
        found = current_app.extensions["tracking_recent_sources"] = _RecentSources()
    result: _RecentSources = found
    return result


def _reclassify_earlier(
    recent: _RecentSources,
    new_evidence: dict[tuple[Any, ...], list[datetime]],
    batch_uids: set[str],
    span: timedelta,
) -> None:
    """Turn remembered human events of sources that now showed evidence into machine ones."""
    flags: dict[str, tuple[bool, bool]] = {}
    for source, times in new_evidence.items():
        for occurred_at, uid, first_kind, first_link in recent.events.get(source, ()):
            if uid not in batch_uids and any(abs(occurred_at - t) <= span for t in times):
                flags[uid] = (first_kind, first_link)
    if not flags:
        return
    changed = db.session.execute(
        update(TrackingEvent)
        .where(TrackingEvent.hit_uid.in_(list(flags)), TrackingEvent.is_machine.is_(False))
        .values(is_machine=True, machine_reason="burst")
        .returning(
            TrackingEvent.hit_uid,
            TrackingEvent.account_id,
            TrackingEvent.campaign_id,
            TrackingEvent.kind,
            TrackingEvent.link_id,
            TrackingEvent.occurred_at,
            TrackingEvent.message_id,
        ),
        execution_options={"synchronize_session": False},
    ).all()
    deltas = rollups.Deltas()
    domains = rollups.domains_of_messages(row.message_id for row in changed if row.message_id)
    for changed_uid, account_id, campaign_id, kind, link_id, occurred_at, message_id in changed:
        row = {
            "account_id": account_id,
            "campaign_id": campaign_id,
            "kind": kind,
            "link_id": link_id,
            "occurred_at": occurred_at,
            "message_id": message_id,
        }
        first_kind, first_link = flags[str(changed_uid)]
        domain = domains.get(message_id) if message_id is not None else None
        deltas.count(row, False, -1, first_kind, first_link, domain)
        deltas.count(row, True, 1, False, False, None, "burst")
    deltas.apply()


def apply_event_retention(now: datetime) -> int:
    """Delete every account's events older than its ``event_retention_days``; return how many.

    Every event is added to the roll-ups in the transaction that stores it (and the
    migrations that introduced them rolled older events in), so deleting loses no figure:
    reports read the roll-ups. On PostgreSQL a monthly partition older than every account's
    retention is dropped whole (:mod:`tracking.partitions`); what is left is deleted by row,
    which there reads only the partitions before the cutoff. Computed from database state
    only: running it twice, late, or in two processes at once deletes the same rows once and
    changes nothing else.
    """
    accounts = db.session.execute(select(Account.id, Account.event_retention_days)).all()
    retention = {account_id: max(int(days or 0), 1) for account_id, days in accounts}
    deleted = 0
    if retention:
        oldest_kept = now - timedelta(days=max(retention.values()))
        deleted += partitions.drop_expired_partitions(oldest_kept)
    for account_id, days in retention.items():
        cutoff = now - timedelta(days=days)
        result = db.session.execute(
            delete(TrackingEvent).where(
                TrackingEvent.account_id == account_id, TrackingEvent.occurred_at < cutoff
            )
        )
        db.session.commit()
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


#: An undo form older than this is not even verified (the undo window is far shorter).
UNDO_TOKEN_MAX_AGE = 24 * 3600


def undo_seconds() -> int:
    """How long an unsubscribe can be undone from its page."""
    return int(current_app.config["UNSUBSCRIBE_UNDO_SECONDS"])


@dataclass(frozen=True)
class UnsubscribeOutcome:
    """What an unsubscribe through a message did."""

    counted: bool  # this request added the message's unsubscribe to the campaign's figure
    undo_token: str | None  # set while the unsubscribe may still be undone


def _undo_token(message_id: int, times: int) -> str:
    return sign_timed(Purpose.UNSUBSCRIBE_UNDO, [message_id, times])


def _record_unsubscribe(
    message: Message, campaign: Campaign, changed: subscriber_services.Unsubscribed
) -> bool:
    """Make the message's unsubscribe row stand; True when it was not standing before (the
    campaign's figure grows by one). No check-then-insert: a conditional UPDATE of an undone
    row, else an INSERT the unique ``message_id`` lets through once, else a refresh of the
    standing row. Of concurrent or replayed requests exactly one gets True."""
    now = utcnow()
    what = {
        "list_ids": changed.list_ids,
        "suppressed": changed.suppressed,
        "unsubscribed_at": now,
        "times": MessageUnsubscribe.times + 1,
    }
    renewed = db.session.execute(
        update(MessageUnsubscribe)
        .where(
            MessageUnsubscribe.message_id == message.id,
            MessageUnsubscribe.status == UnsubscribeStatus.UNDONE.value,
        )
        .values(status=UnsubscribeStatus.ACTIVE.value, undone_at=None, **what)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(renewed) == 1:
        return True
    dialect = db.session.get_bind().dialect.name
    inserted = db.session.execute(
        _insert(MessageUnsubscribe, dialect)
        .values(
            account_id=campaign.account_id,
            campaign_id=campaign.id,
            message_id=message.id,
            status=UnsubscribeStatus.ACTIVE.value,
            list_ids=changed.list_ids,
            suppressed=changed.suppressed,
            times=1,
            unsubscribed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
    )
    if _rowcount(inserted) == 1:
        return True
    standing = db.session.execute(
        select(
            MessageUnsubscribe.list_ids,
            MessageUnsubscribe.suppressed,
            MessageUnsubscribe.unsubscribed_at,
        ).where(MessageUnsubscribe.message_id == message.id)
    ).first()
    if standing is not None and (
        [int(i) for i in standing.list_ids] != changed.list_ids
        or standing.suppressed != changed.suppressed
        or standing.unsubscribed_at <= now - timedelta(seconds=undo_seconds())
    ):
        # The person came back (preference centre) and left again through this message: the
        # same unsubscribe in the figure, but an undo now gives back this latest change. (The
        # same change within the window is a concurrent duplicate: the first one's undo stays
        # valid.)
        db.session.execute(
            update(MessageUnsubscribe)
            .where(
                MessageUnsubscribe.message_id == message.id,
                MessageUnsubscribe.status == UnsubscribeStatus.ACTIVE.value,
            )
            .values(**what)
            .execution_options(synchronize_session=False)
        )
    return False


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def unsubscribe_message_recipient(message_id: int, method: str) -> UnsubscribeOutcome | None:
    """Unsubscribe the recipient of a message from the campaign's list (every list of the
    account when the campaign went to several lists or segments). Commits.

    Idempotent: one person, one message, one unsubscribe in the campaign's figure, however many
    POSTs, clicks or one-click replays, concurrent or not (see :func:`_record_unsubscribe`).
    A repeat changes nothing and writes no consent record. Returns None when the message is
    unknown or its contact is gone (erased).
    """
    message = db.session.get(Message, message_id)
    if message is None:
        return None
    campaign = db.session.get(Campaign, message.campaign_id)
    if campaign is None or message.contact_id is None:
        return None
    changed = subscriber_services.unsubscribe_lists(
        account_id=campaign.account_id,
        contact_id=message.contact_id,
        list_id=campaign_queries.unsubscribe_list_id(campaign.id),
        source=f"unsubscribe:{method}",
    )
    if changed is None:
        db.session.rollback()
        return None
    counted = _record_unsubscribe(message, campaign, changed) if changed.changed else False
    db.session.commit()
    row = db.session.scalar(
        select(MessageUnsubscribe).where(MessageUnsubscribe.message_id == message_id)
    )
    token = None
    if (
        row is not None
        and row.status == UnsubscribeStatus.ACTIVE.value
        and row.unsubscribed_at > utcnow() - timedelta(seconds=undo_seconds())
    ):
        token = _undo_token(message_id, row.times)
    return UnsubscribeOutcome(counted=counted, undo_token=token)


class UndoResult(StrEnum):
    """The answer to an undo request."""

    UNDONE = "undone"  # subscribed again, and out of the campaign's figure
    TOO_LATE = "too-late"  # the window is over, or a later unsubscribe replaced this one


def undo_unsubscribe(message_id: int, undo_token: str) -> UndoResult:
    """Undo an unsubscribe made through ``message_id`` moments ago, by the token its page gave
    (signed for ``Purpose.UNSUBSCRIBE_UNDO``, valid :func:`undo_seconds`, naming the row's
    ``times``). Gives back what it changed, writes ``resubscribed`` consent records and takes
    the unsubscribe out of the campaign's figure (the row becomes ``undone``). Idempotent: a
    second undo of the same unsubscribe answers UNDONE and changes nothing. Commits.

    Raises BadTokenError for a forged token, one made for another message, or a day old.
    """
    window = undo_seconds()
    # The window itself is checked on the row (its unsubscribe time); the token's own age limit
    # only bounds how long a page's form is worth verifying at all.
    payload = unsign_timed(Purpose.UNSUBSCRIBE_UNDO, undo_token, max_age=UNDO_TOKEN_MAX_AGE)
    if not (
        isinstance(payload, list)
        and len(payload) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        and payload[0] == message_id
    ):
        raise BadTokenError("malformed undo token, or one of another message")
    times = int(payload[1])
    now = utcnow()
    row = db.session.scalar(
        select(MessageUnsubscribe).where(MessageUnsubscribe.message_id == message_id)
    )
    if row is None or row.times != times:
        return UndoResult.TOO_LATE
    if row.status == UnsubscribeStatus.UNDONE.value:
        return UndoResult.UNDONE
    claimed = db.session.execute(
        update(MessageUnsubscribe)
        .where(
            MessageUnsubscribe.id == row.id,
            MessageUnsubscribe.times == times,
            MessageUnsubscribe.status == UnsubscribeStatus.ACTIVE.value,
            MessageUnsubscribe.unsubscribed_at > now - timedelta(seconds=window),
        )
        .values(status=UnsubscribeStatus.UNDONE.value, undone_at=now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(claimed) != 1:
        db.session.rollback()
        return UndoResult.TOO_LATE
    message = db.session.get(Message, message_id)
    if message is not None and message.contact_id is not None:
        subscriber_services.undo_unsubscribe(
            row.account_id,
            message.contact_id,
            subscriber_services.Unsubscribed(
                list_ids=[int(i) for i in row.list_ids], suppressed=row.suppressed
            ),
        )
    db.session.commit()
    return UndoResult.UNDONE
