"""The gate of the Delivery Optimization Engine: the only way into it, and out of it.

Every write into the engine's tables goes through this module, and this module decides:

* the **account** must take part (``Account.engine_participation``, Settings > Advanced);
  the default is to take part, and leaving removes what it contributed (one job run);
* the **contact** must be one the privacy layer lets be processed
  (:func:`privacy.policy.may_process`: it exists and has not restricted processing, objected
  or withdrawn consent);
* only the address enters, as a keyed hash, with its domain: nothing else about the contact
  and nothing about the account reaches the learned tables.

What the engine serves (suppression, best send hour, domain pace) is answered here too, and
only to accounts that take part: an account that left gets nothing.

Callers: the sender (:func:`record_delivery_outcome`, :func:`record_deliveries_soon`, and
its throttle :func:`pacing_pause`), the tracking ingest (:func:`record_engagements_soon`),
erasure (:func:`forget_address`), objection and restriction
(:func:`withdraw_contact`), account deletion (:func:`forget_account`), the Advanced tab
(:func:`participation_changed`, :func:`contribution_count`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, delete, false, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import load_only

from accounts.models import Account
from campaigns.models import Campaign, Message
from core import db, queue
from core.db import utcnow
from engine import queries, services
from engine.models import ENGAGEMENTS, OUTCOMES, EngineAddress
from privacy import policy
from privacy.models import EngineSuppressedAddress
from subscribers.audience import emails_in_chunks
from subscribers.models import Contact
from subscribers.suppression import address_hash, suppressed_hashes

if TYPE_CHECKING:
    from privacy.registry import Person

log = logging.getLogger(__name__)
T = TypeVar("T")


# --- who may enter ---------------------------------------------------------------------------


def account_participates(account_id: int, *, for_writing: bool = False) -> bool:
    """Whether the account takes part in the engine now.

    ``for_writing``: on PostgreSQL the account row is read FOR SHARE, so an opt-out committing
    meanwhile waits for this transaction: a contribution is either removed by the opt-out job
    or never made.
    """
    query = select(Account.engine_participation).where(Account.id == account_id)
    if for_writing and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return bool(db.session.scalar(query))


def _address_erased(account_id: int, email: str) -> bool:
    """An erasure leaves an 'erased' suppression; such an address never enters again."""
    return bool(_erased_addresses(account_id, [email]))


def _erased_addresses(account_id: int, emails: list[str]) -> set[str]:
    """Of ``emails``, those with an 'erased' suppression (the account's or platform-wide,
    whatever other reasons they also carry)."""
    by_hash = {address_hash(email): email for email in emails}
    return {by_hash[hashed] for hashed in suppressed_hashes(account_id, by_hash, "erased")}


def _contact_by_email(account_id: int, email: str) -> Contact | None:
    """The account's contact with this address: exact first (the sender passes the stored
    address, and the unique index answers), then case-insensitively."""
    exact = db.session.scalar(
        select(Contact).where(Contact.account_id == account_id, Contact.email == email)
    )
    if exact is not None:
        return exact
    return db.session.scalar(
        select(Contact)
        .where(Contact.account_id == account_id, func.lower(Contact.email) == email.strip().lower())
        .limit(1)
    )


# --- inputs ----------------------------------------------------------------------------------


def record_delivery_outcome(
    account_id: int, contact_id: int | None, email: str, outcome: str, at: datetime
) -> bool:
    """Let the engine learn a delivery outcome (delivered, deferred, bounced = hard bounce,
    complained) of one message, if the account takes part and the contact may enter.

    ``contact_id`` None: the contact is looked up by address in the account; none means erased
    or unknown, and nothing enters. Returns whether it was recorded. Adds to the caller's
    transaction (no commit); call it just before the commit that marks the message, so the
    engine's row locks are held for the shortest time. Never raises for a database error (see
    :func:`_without_harm`); an unknown outcome raises ValueError.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    if not email:
        return False

    def enter() -> bool:
        if not account_participates(account_id, for_writing=True):
            return False
        if contact_id is None:
            contact = _contact_by_email(account_id, email)
        else:
            contact = db.session.get(Contact, contact_id)
            if contact is not None and contact.account_id != account_id:
                contact = None
        if contact is None or not policy.may_process(contact):
            return False
        if _address_erased(account_id, contact.email):
            return False
        services.record(account_id, contact.email, outcome, at)
        if outcome in _VERDICT_OUTCOMES:
            _sync_verdicts([contact.email])
        return True

    return _without_harm(enter, "a delivery outcome")


def record_engagement(
    account_id: int, message_id: int | None, kind: str, at: datetime, is_machine: bool
) -> bool:
    """Let the engine learn the hour of a human open or click of one message.

    Machine hits (proxies, scanners, bots) say nothing about a person's hours and never enter;
    nor do hits without a message (anonymous tokens), other kinds (unsubscribe), accounts that
    do not take part or do not track individually (an hour per address is individual
    tracking), and contacts :func:`privacy.policy.may_process` keeps out. Returns whether it was
    recorded. Adds to the caller's transaction (no commit); never raises.
    """
    if kind not in ENGAGEMENTS or is_machine or message_id is None:
        return False

    def enter() -> bool:
        row = db.session.execute(
            select(Message.contact_id, Account.individual_tracking)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .join(Account, Account.id == Campaign.account_id)
            .where(Message.id == message_id, Campaign.account_id == account_id)
        ).first()
        if row is None or row.contact_id is None or not row.individual_tracking:
            return False
        if not account_participates(account_id, for_writing=True):
            return False
        contact = db.session.get(Contact, row.contact_id)
        if contact is None or not policy.may_process(contact):
            return False
        if _address_erased(account_id, contact.email):
            return False
        services.record(account_id, contact.email, kind, at)
        return True

    return _without_harm(enter, "an engagement")


def _without_harm(enter: Callable[[], T], what: str, failed: T = False) -> T:  # type: ignore[assignment]
    """Run an engine input so that a database error in it never undoes the caller's work;
    ``failed`` is what it returns then.

    On PostgreSQL it runs in a SAVEPOINT, rolled back alone on error; SQLite rolls back only
    the failed statement. The error is logged by class only: its parameters hold an address.
    """
    try:
        if db.session.get_bind().dialect.name == "postgresql":
            with db.session.begin_nested():
                return enter()
        return enter()
    except SQLAlchemyError as exc:
        log.error("the engine skipped %s after a database error (%s)", what, type(exc).__name__)
        return failed


# --- removal ---------------------------------------------------------------------------------


def forget_address(email: str) -> int:
    """Erasure: remove every engine row derived from ``email``, from every account, and
    recompute what it fed. Returns the ledger rows removed. Adds to the caller's transaction."""
    return withdraw_contact(None, email)


def withdraw_contact(account_id: int | None, email: str) -> int:
    """Objection or restriction at one account (``None``: every account): remove what it
    contributed about ``email`` and recompute. (New outcomes are refused by
    :func:`privacy.policy.may_process`.)"""
    removed = services.remove_address(email, account_id=account_id)
    _sync_verdicts([email])
    return removed


def forget_account(account_id: int) -> int:
    """Account deletion: remove the account's contributions now (call before deleting it;
    the cascade alone would leave the learned rows until the maintenance job). The suppressed
    addresses are rebuilt by a job once the caller commits."""
    removed = services.remove_account_contributions(account_id)
    _rebuild_verdicts_after_commit()
    return removed


def leave(account_id: int) -> int:
    """The job after an opt-out: remove what the account contributed, recompute its effect
    away and rebuild the suppressed addresses. Skipped (0) when the account has joined again
    meanwhile: joining already removed the old contributions, and what it contributed since
    is wanted. The caller commits."""
    account = db.session.get(Account, account_id)
    if account is not None and account.engine_participation:
        return 0
    removed = services.remove_account_contributions(account_id)
    rebuild_verdicts()
    return removed


def participation_changed(account_id: int, participate: bool) -> None:
    """The account joined or left (call in the same transaction as the change).

    Leaving enqueues the removal job after the commit: one run removes every contribution and
    recomputes the learned tables. Joining starts from nothing: any contribution still left
    from before (the removal job has not run yet) is removed at once.
    """
    from privacy import tasks

    if participate:
        services.remove_account_contributions(account_id)
        _rebuild_verdicts_after_commit()
    else:
        queue.enqueue_after_commit(tasks.leave_engine, account_id)


def contribution_count(account_id: int) -> int:
    """How many contribution rows the engine holds from the account (for the Advanced tab)."""
    return services.contribution_count(account_id)


# --- outputs (only for accounts that take part) ----------------------------------------------


def engine_suppressed(account_id: int, emails: Iterable[str]) -> set[str]:
    """Of ``emails``, those that hard-bounced (and were not delivered since) or complained on
    any participating account. Empty for an account that does not take part."""
    wanted = list(emails)
    if not wanted or not account_participates(account_id):
        return set()
    by_hash: dict[str, list[str]] = {}
    for email in wanted:
        by_hash.setdefault(services.engine_hash(email), []).append(email)
    return {email for hashed in queries.suppressed_hashes(by_hash) for email in by_hash[hashed]}


def engine_suppressed_condition(
    account_id: int, email: SQLColumnExpression[str]
) -> ColumnElement[bool]:
    """:func:`engine_suppressed` as a SQL condition on an address column (PostgreSQL; exact for
    ASCII addresses, see :func:`engine.services.engine_hash_sql`): false for an account that
    does not take part."""
    if not account_participates(account_id):
        return false()
    # The domain first: only addresses in a domain with a suppressed address are hashed (the
    # engine keeps each hash's lower-cased domain; SQL lower is Python's for ASCII).
    domain = func.lower(func.split_part(func.btrim(email), "@", -1))
    return and_(
        domain.in_(select(EngineAddress.domain).where(queries.is_suppressed())),
        services.engine_hash_sql(email).in_(
            select(EngineAddress.address_hash).where(queries.is_suppressed())
        ),
    )


def best_send_hours(
    account_id: int, emails: Iterable[str], window: tuple[int, int]
) -> dict[str, int]:
    """Each address's best hour (UTC, 0-23) within ``window`` (start, end): start included,
    end excluded, wrapping past midnight. Addresses the engine knows too little of are left
    out (send them at the campaign's time). Empty for an account that does not take part."""
    return best_send_hours_among(account_id, emails, queries.window_hours(window))


def best_send_hours_among(
    account_id: int, emails: Iterable[str], hours: Sequence[int]
) -> dict[str, int]:
    """Like :func:`best_send_hours` with the window given as its UTC hours (0-23), earliest
    first: a sender whose window is in local hours passes them converted for the day."""
    wanted = list(emails)
    if not wanted or not hours or not account_participates(account_id):
        return {}
    by_hash = {services.engine_hash(email): email for email in wanted}
    best: dict[str, int] = {}
    for hashed, histogram in queries.engagement_hours(by_hash).items():
        hour = queries.best_hour(histogram, hours)
        if hour is not None:
            best[by_hash[hashed]] = hour
    return best


def best_send_hour(account_id: int, email: str, window: tuple[int, int]) -> int | None:
    """The recipient's best hour within ``window`` (see :func:`best_send_hours`), or None."""
    return best_send_hours(account_id, [email], window).get(email)


def domain_pace(account_id: int, domain: str) -> int | None:
    """Messages per minute to send to ``domain`` because it defers, or None (no limit known).
    None for an account that does not take part."""
    if not domain or not account_participates(account_id):
        return None
    return queries.domain_pace(domain)


# --- the suppressed addresses, by the hash contacts keep --------------------------------------

#: The outcomes that can change whether the engine suppresses an address (see
#: :func:`engine.queries.is_suppressed`); deferrals and engagement cannot.
_VERDICT_OUTCOMES = frozenset({"delivered", "bounced", "complained"})
_VERDICT_CHUNK = 500


def _insert_ignoring_present(hashes: Iterable[str]) -> None:
    rows = [{"address_hash": hashed} for hashed in hashes]
    if not rows:
        return
    make = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(rows), _VERDICT_CHUNK):
        db.session.execute(
            make(EngineSuppressedAddress).on_conflict_do_nothing(),
            rows[start : start + _VERDICT_CHUNK],
        )


def _sync_verdicts(emails: Iterable[str]) -> None:
    """Make ``engine_suppressed_addresses`` hold exactly those of ``emails`` the engine
    suppresses now (call after the engine's rows for them changed, in the same transaction)."""
    by_engine_hash: dict[str, set[str]] = {}
    for email in set(emails):
        by_engine_hash.setdefault(services.engine_hash(email), set()).add(address_hash(email))
    if not by_engine_hash:
        return
    suppressed = queries.suppressed_hashes(by_engine_hash)
    lifted = sorted(
        hashed
        for engine_hash, hashes in by_engine_hash.items()
        if engine_hash not in suppressed
        for hashed in hashes
    )
    for start in range(0, len(lifted), _VERDICT_CHUNK):
        db.session.execute(
            delete(EngineSuppressedAddress).where(
                EngineSuppressedAddress.address_hash.in_(lifted[start : start + _VERDICT_CHUNK])
            )
        )
    _insert_ignoring_present(
        sorted(hashed for engine_hash in suppressed for hashed in by_engine_hash[engine_hash])
    )


def rebuild_verdicts() -> int:
    """Rebuild ``engine_suppressed_addresses`` from every account's contacts: the hash of each
    address some account holds and the engine suppresses now, and nothing else. For changes
    that name no address (an account leaving, retention); returns the rows kept. The caller
    commits (readers see the old set or the new one, never a half).

    PostgreSQL computes the engine's hash of the ASCII addresses in a domain with a suppressed
    address; the others (non-ASCII: SQL ``lower`` is not Python's there; every address on
    SQLite; rows whose own hash is not stored yet) go through :func:`engine_suppressed`'s
    Python rule, in chunks.
    """
    suppressed_domains = select(EngineAddress.domain).where(queries.is_suppressed())
    domain = func.lower(func.split_part(func.btrim(Contact.email), "@", -1))
    db.session.execute(delete(EngineSuppressedAddress))
    in_python = select(Contact.id, Contact.email)
    if db.session.get_bind().dialect.name == "postgresql":
        ascii_only = func.octet_length(Contact.email) == func.length(Contact.email)
        with db.postgres_settings(db.LARGE_AGGREGATE_SETTINGS):
            # ON CONFLICT: an outcome recorded meanwhile may have added one of them already.
            db.session.execute(
                pg_insert(EngineSuppressedAddress)
                .from_select(
                    ["address_hash"],
                    select(Contact.address_hash)
                    .where(
                        Contact.address_hash.is_not(None),
                        ascii_only,
                        domain.in_(suppressed_domains),
                        services.engine_hash_sql(Contact.email).in_(
                            select(EngineAddress.address_hash).where(queries.is_suppressed())
                        ),
                    )
                    .distinct(),
                )
                .on_conflict_do_nothing()
            )
        in_python = in_python.where(
            (Contact.address_hash.is_(None))
            | (func.octet_length(Contact.email) != func.length(Contact.email))
        )
    domains = set(db.session.scalars(suppressed_domains.distinct()))
    for chunk in emails_in_chunks(in_python, _VERDICT_CHUNK) if domains else ():
        by_engine_hash: dict[str, set[str]] = {}
        for email in chunk:
            if services.domain_of(email) in domains:
                by_engine_hash.setdefault(services.engine_hash(email), set()).add(
                    address_hash(email)
                )
        _insert_ignoring_present(
            sorted(
                hashed
                for engine_hash in queries.suppressed_hashes(by_engine_hash)
                for hashed in by_engine_hash[engine_hash]
            )
        )
    db.session.flush()
    return int(db.session.scalar(select(func.count()).select_from(EngineSuppressedAddress)) or 0)


def _rebuild_verdicts_after_commit() -> None:
    from privacy import tasks

    queue.enqueue_after_commit(tasks.rebuild_engine_verdicts)


def engine_verdict_in(account_id: int, hashed: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """A SQL condition: the engine suppresses the address whose keyed hash (the one contacts
    keep, ``contacts.address_hash``) is ``hashed``; false for an account that does not take
    part. The same answer as :func:`engine_suppressed` for that address, read from the set the
    gate keeps instead of hashing it under the engine's key."""
    if not account_participates(account_id):
        return false()
    return hashed.in_(select(EngineSuppressedAddress.address_hash))


# --- data-subject rights ---------------------------------------------------------------------


def report_engine_data(person: Person) -> dict[int | None, list[dict[str, Any]]]:
    """What the engine holds about each contact's address (it holds the hash, not the address)."""
    contacts = db.session.execute(
        select(Contact.id, Contact.email).where(Contact.id.in_(person.contact_ids))
    )
    records: dict[int | None, list[dict[str, Any]]] = {}
    for contact_id, email in contacts:
        held = queries.about_address(services.engine_hash(email))
        if held:
            records[contact_id] = [held]
    return records


def erase_engine_data(person: Person) -> None:
    """Erasure at an account removes what that account contributed about each address; an
    erasure the person asked for removes everything the engine holds about the address."""
    contacts = db.session.execute(
        select(Contact.account_id, Contact.email).where(Contact.id.in_(person.contact_ids))
    )
    for account_id, email in contacts:
        withdraw_contact(account_id, email)
    if person.platform_wide and person.address:
        forget_address(person.address)


def restrict_engine_data(person: Person, flag: str) -> None:
    """Restriction, objection or withdrawal: what the engine learned from the contacts goes."""
    contacts = db.session.execute(
        select(Contact.account_id, Contact.email).where(Contact.id.in_(person.contact_ids))
    )
    for account_id, email in contacts:
        withdraw_contact(account_id, email)


def run_maintenance(now: datetime) -> None:
    """The scheduler's daily job: drop contributions of accounts that left or are past
    retention and rebuild the learned tables. Safe to run twice, late or concurrently."""
    services.maintain()
    rebuild_verdicts()
    db.session.commit()


def record_engagements_soon(signals: Sequence[policy.EngineSignal]) -> None:
    """Tracking calls this with each committed ingest batch's human opens and clicks that the
    privacy layer allowed (:func:`privacy.policy.engine_signal`). One job per batch records
    them (ids and hour only, through :func:`record_engagements`), so the ingest never waits
    for the engine. Enqueues at once: the caller has committed."""
    from privacy import tasks

    if not signals:
        return
    tasks.record_engagements.send(
        [[s.account_id, s.message_id, s.kind, s.hour.isoformat()] for s in signals]
    )


def record_engagements(signals: list[list[Any]]) -> int:
    """Record ``[account, message, kind, hour]`` signals; the gate's checks apply to each.
    Returns how many entered. The caller commits."""
    return sum(
        record_engagement(account_id, message_id, kind, datetime.fromisoformat(hour), False)
        for account_id, message_id, kind, hour in signals
    )


_PACING_CACHE: dict[tuple[int, str], tuple[float, float]] = {}
PACING_CACHE_SECONDS = 60.0


def pacing_pause(account_id: int, domain: str) -> float:
    """Seconds the sender waits between two sends to ``domain`` because the engine saw it
    defer (0: no limit known, or the account does not take part).

    Asked before every message, so the answer is kept for a minute per (account, domain):
    pacing follows days of outcomes and an opt-out takes effect within that minute."""
    now = time.monotonic()
    cached = _PACING_CACHE.get((account_id, domain))
    if cached is not None and cached[0] > now:
        return cached[1]
    pace = domain_pace(account_id, domain)
    pause = 60.0 / pace if pace else 0.0
    if len(_PACING_CACHE) > 10_000:
        _PACING_CACHE.clear()
    _PACING_CACHE[(account_id, domain)] = (now + PACING_CACHE_SECONDS, pause)
    return pause


def record_deliveries_soon(account_id: int, message_ids: list[int]) -> None:
    """A send claim's accepted messages: recorded as delivered by an engine job once the
    caller's transaction commits (nothing is enqueued for accounts that do not take part)."""
    from privacy import tasks

    if message_ids and account_participates(account_id):
        queue.enqueue_after_commit(
            tasks.record_deliveries, account_id, message_ids, utcnow().isoformat()
        )


def record_deliveries(account_id: int, message_ids: list[int], at: datetime) -> int:
    """Record each message's recipient as delivered (the same checks as
    :func:`record_delivery_outcome`, made for the whole batch at once); return how many
    entered. The caller commits."""

    def enter() -> int:
        if not message_ids or not account_participates(account_id, for_writing=True):
            return 0
        entered: list[str] = []
        for start in range(0, len(message_ids), 500):
            contacts = db.session.scalars(
                select(Contact)
                # What the rule reads, and the address: not the whole row.
                .options(
                    load_only(
                        Contact.email,
                        *(getattr(Contact, name) for name in policy.CONTACT_STATE_COLUMNS),
                    )
                )
                .join(Message, Message.contact_id == Contact.id)
                .where(
                    Message.id.in_(message_ids[start : start + 500]),
                    Contact.account_id == account_id,
                )
            ).all()
            allowed = [c.email for c in contacts if policy.may_process(c)]
            erased = _erased_addresses(account_id, allowed)
            entered += [email for email in allowed if email not in erased]
        services.record_many(account_id, entered, "delivered", at)
        _sync_verdicts(entered)
        return len(entered)

    return _without_harm(enter, "a claim's deliveries", 0)
