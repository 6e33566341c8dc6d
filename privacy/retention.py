"""Periodic privacy jobs, each computed from database state.

Every job takes ``now`` and returns how many rows it handled. Each one selects what is due
from the database and changes it with a conditional statement that re-checks the condition, so
running a job twice, late, or in two processes at once does the work once, and a job that did
not run for a while (downtime) does everything that fell due meanwhile on its next run. The
scheduler (core/scheduler.py) also holds a PostgreSQL advisory lock per job while it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, delete, exists, or_, select, update

from accounts import services as accounts
from accounts.models import Account
from core import db
from privacy.models import AuditEntry, ConfirmationMail, DataRequest, Download, SpentToken
from subscribers.models import Contact, Subscription


def _days(name: str) -> timedelta:
    return timedelta(days=int(current_app.config[name]))


def expire_requests(now: datetime) -> int:
    """Unconfirmed (or never fulfilled) requests past their expiry become ``expired`` and lose
    the address they held; requests lose their client prefix once older than the rate limit's
    window (``DATA_REQUEST_LIMIT_WINDOW``); requests older than ``DATA_REQUEST_KEEP_DAYS`` are
    removed (their audit entries stay)."""
    due = list(
        db.session.execute(
            select(DataRequest.id, DataRequest.kind, DataRequest.address_hash).where(
                DataRequest.status.in_(("received", "confirmed")), DataRequest.expires_at <= now
            )
        )
    )
    handled = 0
    for request_id, kind, hashed in due:
        changed = db.session.execute(
            update(DataRequest)
            .where(
                DataRequest.id == request_id,
                DataRequest.status.in_(("received", "confirmed")),
                DataRequest.expires_at <= now,
            )
            .values(status="expired", pending_address=None, proposed=None)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            db.session.add(
                AuditEntry(
                    request_id=request_id,
                    kind=kind,
                    event="expired",
                    actor="scheduler",
                    address_hash=hashed,
                    detail="not confirmed in time",
                    at=now,
                )
            )
            handled += 1
        db.session.commit()
    removed = db.session.execute(
        delete(DataRequest)
        .where(DataRequest.created_at <= now - _days("DATA_REQUEST_KEEP_DAYS"))
        .execution_options(synchronize_session=False)
    )
    # The client prefix serves the per-client rate limit only: gone once out of its window.
    window = timedelta(seconds=int(current_app.config["DATA_REQUEST_LIMIT_WINDOW"]))
    db.session.execute(
        update(DataRequest)
        .where(DataRequest.client_prefix.is_not(None), DataRequest.created_at < now - window)
        .values(client_prefix=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return handled + int(removed.rowcount or 0)  # type: ignore[attr-defined]


def remove_downloads_and_spent_tokens(now: datetime) -> int:
    """Delete downloads that expired or were fetched, spent tokens past their age, and the
    record of confirmation emails sent more than a day ago."""
    downloads = db.session.execute(
        delete(Download)
        .where(or_(Download.expires_at <= now, Download.used_at.is_not(None)))
        .execution_options(synchronize_session=False)
    )
    tokens = db.session.execute(
        delete(SpentToken)
        .where(SpentToken.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    # Mail windows long past (a day covers any sensible DATA_REQUEST_EMAIL_WINDOW).
    windows = db.session.execute(
        delete(ConfirmationMail)
        .where(ConfirmationMail.sent_at <= now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    results: list[Any] = [downloads, tokens, windows]
    return sum(int(result.rowcount or 0) for result in results)


def purge_unconfirmed_signups(now: datetime) -> int:
    """Delete sign-ups left unconfirmed for ``UNCONFIRMED_SIGNUP_DAYS``, and the contacts they
    leave on no list at all (a never-confirmed address is not kept)."""
    cutoff = now - _days("UNCONFIRMED_SIGNUP_DAYS")
    stale = and_(Subscription.status == "unconfirmed", Subscription.created_at <= cutoff)
    contact_ids = list(db.session.scalars(select(Subscription.contact_id).where(stale)))
    if not contact_ids:
        return 0
    removed = db.session.execute(
        delete(Subscription).where(stale).execution_options(synchronize_session=False)
    )
    has_subscription = exists().where(Subscription.contact_id == Contact.id)
    db.session.execute(
        delete(Contact)
        .where(Contact.id.in_(set(contact_ids)), ~has_subscription)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(removed.rowcount or 0)  # type: ignore[attr-defined]


def delete_accounts_due(now: datetime) -> int:
    """Delete permanently the accounts whose confirmed deletion is due (grace period over)."""
    ids = list(
        db.session.scalars(
            select(Account.id).where(
                Account.deletion_due_at.is_not(None), Account.deletion_due_at <= now
            )
        )
    )
    deleted = 0
    for account_id in ids:
        still_due = and_(Account.deletion_due_at.is_not(None), Account.deletion_due_at <= now)
        if accounts.delete_account_permanently(account_id, "deletion requested", still_due):
            deleted += 1
    return deleted


def _inactive_since(now: datetime) -> datetime:
    return now - _days("ACCOUNT_INACTIVITY_DAYS")


def warn_inactive_accounts(now: datetime) -> int:
    """Warn the owners once, ``ACCOUNT_INACTIVITY_WARNING_DAYS`` before an inactivity deletion.

    The warning is claimed with a conditional UPDATE (only one process sends it); activity
    clears it (accounts.services.record_activity), so a later lapse warns again.
    """
    warn_before = _days("ACCOUNT_INACTIVITY_WARNING_DAYS")
    threshold = _inactive_since(now) + warn_before
    due = and_(
        Account.last_activity_at <= threshold,
        Account.inactivity_warning_sent_at.is_(None),
        Account.deletion_due_at.is_(None),
    )
    ids = list(db.session.scalars(select(Account.id).where(due)))
    warned = 0
    for account_id in ids:
        claimed = db.session.execute(
            update(Account)
            .where(Account.id == account_id, due)
            .values(inactivity_warning_sent_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        account = db.session.get(Account, account_id)
        if account is None:
            continue
        db.session.refresh(account)
        # Never less notice than promised, even when the job runs late.
        deletion_on = max(
            account.last_activity_at + _days("ACCOUNT_INACTIVITY_DAYS"), now + warn_before
        )
        accounts.send_inactivity_warning(account_id, deletion_on)
        warned += 1
    return warned


def delete_inactive_accounts(now: datetime) -> int:
    """Delete accounts without activity for ``ACCOUNT_INACTIVITY_DAYS`` whose owners were
    warned at least ``ACCOUNT_INACTIVITY_WARNING_DAYS`` ago (and did nothing since)."""
    due = and_(
        Account.last_activity_at <= _inactive_since(now),
        Account.inactivity_warning_sent_at.is_not(None),
        Account.inactivity_warning_sent_at <= now - _days("ACCOUNT_INACTIVITY_WARNING_DAYS"),
    )
    ids = list(db.session.scalars(select(Account.id).where(due)))
    deleted = 0
    for account_id in ids:
        if accounts.delete_account_permanently(account_id, "inactive for a year", due):
            deleted += 1
    return deleted
