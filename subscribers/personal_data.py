"""The subscribers package's stores of personal data (registered in ``privacy.registry``):
contacts, subscriptions, consent records, suppression entries, import files.

Each function takes a ``privacy.registry.Person`` (or an account id, or ``now``) and follows
the contract written in ``privacy/registry.py``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update

from core import db
from core.db import iso, utcnow
from subscribers.models import (
    ConsentRecord,
    Contact,
    ImportJob,
    ImportStatus,
    MailingList,
    SignupConfirmation,
    Subscription,
    Suppression,
)

if TYPE_CHECKING:
    from privacy.registry import Person, Records


# --- contacts -------------------------------------------------------------------------------


def report_contacts(person: Person) -> Records:
    """Each contact's own fields (what the organisation holds and its source)."""
    found: Records = {}
    for contact in db.session.scalars(select(Contact).where(Contact.id.in_(person.contact_ids))):
        found[contact.id] = [
            {
                "email": contact.email,
                "name": contact.name,
                "attributes": dict(contact.attributes or {}),
                "source": contact.source,
                "added": iso(contact.created_at),
                "updated": iso(contact.updated_at),
                "processing_restricted_since": iso(contact.restricted_at),
                # "person" (asked through the request form) or "account" (set by the account).
                "processing_restricted_by": contact.restricted_by,
                "objected_since": iso(contact.objected_at),
                "consent_withdrawn_since": iso(contact.consent_withdrawn_at),
            }
        ]
    return found


def erase_contacts(person: Person) -> None:
    """Delete the contact rows (their consent records and confirmations go by cascade)."""
    if person.contact_ids:
        db.session.execute(
            delete(Contact)
            .where(Contact.id.in_(person.contact_ids))
            .execution_options(synchronize_session=False)
        )


def restrict_contacts(person: Person, flag: str) -> None:
    """Set ``flag`` (restricted_at, objected_at, consent_withdrawn_at) where not set yet."""

    if flag not in ("restricted_at", "objected_at", "consent_withdrawn_at"):
        raise ValueError(flag)
    column = getattr(Contact, flag)
    db.session.execute(
        update(Contact)
        .where(Contact.id.in_(person.contact_ids), column.is_(None))
        .values({flag: utcnow()})
        .execution_options(synchronize_session="fetch")
    )


# --- subscriptions and consent ----------------------------------------------------------------


def report_subscriptions(person: Person) -> Records:
    """Each contact's lists, with status and dates."""
    rows = db.session.execute(
        select(Subscription, MailingList.name)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.contact_id.in_(person.contact_ids))
        .order_by(Subscription.id)
    ).all()
    found: Records = {}
    for subscription, list_name in rows:
        found.setdefault(subscription.contact_id, []).append(
            {
                "list": list_name,
                "status": subscription.status,
                "since": iso(subscription.created_at),
                "changed": iso(subscription.updated_at),
            }
        )
    return found


def erase_subscriptions(person: Person) -> None:
    """Delete the contacts' subscriptions and pending sign-up confirmations."""
    if not person.contact_ids:
        return
    db.session.execute(
        delete(Subscription)
        .where(Subscription.contact_id.in_(person.contact_ids))
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(SignupConfirmation)
        .where(SignupConfirmation.contact_id.in_(person.contact_ids))
        .execution_options(synchronize_session=False)
    )


def report_consent(person: Person) -> Records:
    """Each contact's consent history: what changed, when, through what, on which list."""
    rows = db.session.execute(
        select(ConsentRecord, MailingList.name)
        .outerjoin(MailingList, MailingList.id == ConsentRecord.list_id)
        .where(ConsentRecord.contact_id.in_(person.contact_ids))
        .order_by(ConsentRecord.id)
    ).all()
    found: Records = {}
    for record, list_name in rows:
        found.setdefault(record.contact_id, []).append(
            {
                "action": record.action,
                "source": record.source,
                "list": list_name,
                "detail": record.detail,
                "network_prefix": record.ip_prefix,
                "at": iso(record.created_at),
            }
        )
    return found


def erase_consent(person: Person) -> None:
    """Delete the contacts' consent records (the erasure itself is audited by its hash)."""
    if person.contact_ids:
        db.session.execute(
            delete(ConsentRecord)
            .where(ConsentRecord.contact_id.in_(person.contact_ids))
            .execution_options(synchronize_session=False)
        )


def report_suppressions(person: Person) -> Records:
    """The suppression entries of the address's keyed hash (per account, or platform-wide)."""
    from accounts.models import Account

    query = (
        select(Suppression, Account.name)
        .outerjoin(Account, Account.id == Suppression.account_id)
        .where(Suppression.address_hash == person.address_hash)
    )
    if not person.platform_wide:
        query = query.where(
            or_(Suppression.account_id == person.account_id, Suppression.account_id.is_(None))
        )
    rows = db.session.execute(query.order_by(Suppression.id)).all()
    records = [
        {
            "account": account_name or "every account (platform-wide)",
            "reason": suppression.reason,
            "since": iso(suppression.created_at),
        }
        for suppression, account_name in rows
    ]
    return {None: records} if records else {}


# --- import files -----------------------------------------------------------------------------


def _names_person(text: str, needles: list[str]) -> bool:
    folded = text.casefold()
    return any(needle in folded for needle in needles)


def _file_names_person(path: Path, needles: list[str]) -> bool:
    """True when the file's text (read in chunks, any encoding) contains a needle."""
    if not needles:
        return False
    overlap = max(len(n) for n in needles) * 4
    tail = ""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                # Decoded as UTF-8 and as Latin-1: uploads come in either.
                for text in (chunk.decode("utf-8", "ignore"), chunk.decode("latin-1")):
                    if _names_person(tail + text, needles):
                        return True
                tail = chunk[-overlap:].decode("utf-8", "ignore")
    except FileNotFoundError:
        return False
    return False


def _rewrite_report(path: Path, needles: list[str]) -> int:
    """Drop the rows of an error report that name the person; return how many went."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    rows = list(csv.reader(io.StringIO(text)))
    kept = [row for row in rows if not _names_person(",".join(row), needles)]
    dropped = len(rows) - len(kept)
    if dropped:
        out = io.StringIO()
        csv.writer(out).writerows(kept)
        temporary = path.with_suffix(".rewrite")
        temporary.write_text(out.getvalue(), encoding="utf-8")
        os.replace(temporary, path)
    return dropped


def _jobs(person: Person) -> Iterable[ImportJob]:
    query = select(ImportJob).where(or_(ImportJob.stored_path != "", ImportJob.report_path != ""))
    if not person.platform_wide:
        query = query.where(ImportJob.account_id == person.account_id)
    return db.session.scalars(query.order_by(ImportJob.id))


def report_import_files(person: Person) -> Records:
    """The imports whose upload or error report names the person (the file's rows are the
    organisation's upload; the report says which import and when)."""
    needles = person.needles()
    found: list[dict[str, Any]] = []
    for job in _jobs(person):
        for label, path in (("upload", job.stored_path), ("error report", job.report_path)):
            if path and _file_names_person(Path(path), needles):
                found.append(
                    {
                        "file": label,
                        "import": job.id,
                        "account_id": job.account_id,
                        "uploaded": iso(job.created_at),
                    }
                )
    return {None: found} if found else {}


def erase_import_files(person: Person) -> None:
    """Rows naming the person leave every error report; an upload not imported yet that names
    them is deleted and its import marked failed (saying why)."""
    needles = person.needles()
    for job in list(_jobs(person)):
        if job.report_path:
            _rewrite_report(Path(job.report_path), needles)
        if job.status in (ImportStatus.UPLOADED, ImportStatus.QUEUED) and job.stored_path:
            stored = Path(job.stored_path)
            if _file_names_person(stored, needles):
                stored.unlink(missing_ok=True)
                job.status = ImportStatus.FAILED
                job.error = (
                    "The uploaded file was deleted because a person it named asked for "
                    "erasure. Upload it again (the erased address will be refused)."
                )


def sweep_import_files(now: datetime) -> int:
    """Uploads left at the mapping step go (after ``IMPORT_UPLOAD_KEEP_HOURS``), and error
    reports of imports finished more than ``IMPORT_FILE_KEEP_DAYS`` ago are deleted (the
    import says so). Returns how many files went. Commits; safe to run twice."""
    from subscribers.services import import_report_keep_days, remove_abandoned_uploads

    removed = remove_abandoned_uploads(now)
    cutoff = now - timedelta(days=import_report_keep_days())
    due = db.session.execute(
        select(ImportJob.id, ImportJob.report_path).where(
            ImportJob.report_path != "",
            ImportJob.status.in_(("done", "failed")),
            ImportJob.finished_at <= cutoff,
        )
    ).all()
    for import_id, report_path in due:
        changed = db.session.execute(
            update(ImportJob)
            .where(ImportJob.id == import_id, ImportJob.report_path == report_path)
            .values(report_path="")
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            Path(report_path).unlink(missing_ok=True)
            removed += 1
    return removed


def delete_account_import_files(account_id: int) -> None:
    """Every upload and error report of the account: those its imports name, and any file of
    the account's prefix (``<account id>-``) left in the imports directory."""
    from subscribers.services import import_dir

    for stored_path, report_path in db.session.execute(
        select(ImportJob.stored_path, ImportJob.report_path).where(
            ImportJob.account_id == account_id
        )
    ):
        for path in (stored_path, report_path):
            if path:
                Path(path).unlink(missing_ok=True)
    for leftover in import_dir().glob(f"{account_id}-*"):
        leftover.unlink(missing_ok=True)
