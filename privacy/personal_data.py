"""The privacy package's stores of personal data (registered in ``privacy.registry``): data
requests, prepared downloads, the audit log, and the Maildir outbox of the embedded default.

Each function takes a :class:`privacy.registry.Person` (or an account id, or ``now``) and
follows the contract written in ``privacy/registry.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update

from core import db
from core.db import iso
from privacy.models import AuditEntry, DataRequest, Download
from privacy.registry import Person, Records, setting

log = logging.getLogger(__name__)


# --- data requests, downloads, audit ----------------------------------------------------------


def report_requests(person: Person) -> Records:
    """The person's data requests (found by the address's keyed hash); an account sees
    those that concerned it."""
    from privacy.models import RequestAccount

    query = select(DataRequest).where(DataRequest.address_hash == person.address_hash)
    if not person.platform_wide:
        linked = select(RequestAccount.request_id).where(
            RequestAccount.account_id == person.account_id
        )
        query = query.where(DataRequest.id.in_(linked))
    rows = db.session.scalars(query.order_by(DataRequest.id))
    records = [
        {
            "kind": request.kind,
            "status": request.status,
            "received": iso(request.created_at),
            "confirmed": iso(request.confirmed_at),
            "fulfilled": iso(request.fulfilled_at),
            "proposed_correction": dict(request.proposed or {}) or None,
            "client_network_prefix": request.client_prefix,
        }
        for request in rows
    ]
    return {None: records} if records else {}


def erase_requests(person: Person) -> None:
    """No request keeps the address or a proposed correction; the links to the erased
    contacts go. The request rows (kind, status, hash) stay for the audit trail."""
    from privacy.models import RequestAccount

    if person.contact_ids:
        db.session.execute(
            update(RequestAccount)
            .where(RequestAccount.contact_id.in_(person.contact_ids))
            .values(contact_id=None)
            .execution_options(synchronize_session=False)
        )
    if not person.platform_wide:
        return
    hashed = person.address_hash
    db.session.execute(
        update(DataRequest)
        .where(DataRequest.address_hash == hashed, DataRequest.status == "received")
        .values(status="expired", pending_address=None, proposed=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(DataRequest)
        .where(DataRequest.address_hash == hashed, DataRequest.status != "confirmed")
        .values(pending_address=None, proposed=None)
        .execution_options(synchronize_session=False)
    )


def _requests_of(person: Person) -> Any:
    return select(DataRequest.id).where(DataRequest.address_hash == person.address_hash)


def report_downloads(person: Person) -> Records:
    """Downloads prepared for the person and not fetched yet (the person's own report)."""
    if not person.platform_wide:
        return {}
    rows = db.session.scalars(
        select(Download)
        .where(Download.request_id.in_(_requests_of(person)), Download.used_at.is_(None))
        .order_by(Download.id)
    )
    records = [
        {"file": d.filename, "prepared": iso(d.created_at), "expires": iso(d.expires_at)}
        for d in rows
    ]
    return {None: records} if records else {}


def erase_downloads(person: Person) -> None:
    """Every download prepared for the person's requests is deleted (an erasure the person
    asked for; an account's erasure of its contact leaves the person's own requests)."""
    if person.platform_wide:
        db.session.execute(
            delete(Download)
            .where(Download.request_id.in_(_requests_of(person)))
            .execution_options(synchronize_session=False)
        )


def report_audit(person: Person) -> Records:
    """The steps recorded for the person's requests (by the address's keyed hash); an
    account sees its own."""
    query = select(AuditEntry).where(AuditEntry.address_hash == person.address_hash)
    if not person.platform_wide:
        query = query.where(AuditEntry.account_id == person.account_id)
    rows = db.session.scalars(query.order_by(AuditEntry.id))
    records = [
        {"kind": e.kind, "event": e.event, "by": e.actor, "at": iso(e.at), "detail": e.detail}
        for e in rows
    ]
    return {None: records} if records else {}


# --- the Maildir outbox -----------------------------------------------------------------------


def outbox_dir() -> Path | None:
    """The Maildir the embedded default writes to, when mail goes there (no ``SMTP_URL``)
    or when one was written earlier."""
    path = Path(str(current_app.config.get("MAILDIR_PATH") or ""))
    return path if str(path) not in ("", ".") and path.is_dir() else None


def _outbox_files() -> Iterator[Path]:
    root = outbox_dir()
    if root is None:
        return
    for sub in ("new", "cur", "tmp"):
        folder = root / sub
        if folder.is_dir():
            yield from (p for p in folder.iterdir() if p.is_file())


def mail_text(raw: bytes) -> str:
    """Everything a mail says, decoded, casefolded: raw bytes, each header (RFC 2047 words
    decoded) and each text part (quoted-printable or base64 decoded)."""
    parts = [raw.decode("utf-8", "replace")]
    try:
        message = message_from_bytes(raw, policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        for name, value in message.items():
            parts.append(f"{name}: {value}")
        for part in message.walk():
            if part.get_content_maintype() == "text":
                try:
                    parts.append(str(part.get_content()))
                except (LookupError, ValueError):
                    payload = part.get_payload(decode=True)
                    if isinstance(payload, bytes):
                        parts.append(payload.decode("utf-8", "replace"))
    except Exception:  # noqa: S110 - a mail we cannot parse is still searched raw
        pass
    return "\n".join(parts).casefold()


def _naming(needles: list[str]) -> Iterator[tuple[Path, str]]:
    for path in _outbox_files():
        try:
            text = mail_text(path.read_bytes())
        except FileNotFoundError:
            continue
        if any(needle in text for needle in needles):
            yield path, text


def _subject_of(path: Path) -> str:
    try:
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
    except (OSError, ValueError):
        return ""
    return str(message.get("Subject", ""))


def report_outbox(person: Person) -> Records:
    """The mails in the outbox that are to or name the person: subject and when written
    (the person's own report; the outbox is the platform's, not an account's)."""
    if not person.platform_wide:
        return {}
    records = []
    for path, _text in _naming(person.needles()):
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
        records.append({"subject": _subject_of(path), "written": iso(written)})
    return {None: records} if records else {}


def erase_outbox(person: Person) -> None:
    """Delete every mail in the outbox that is to or names the person (campaign mails,
    confirmation mails, notices to account owners quoting the address). An account erasing
    its own contact leaves other accounts' campaign mails alone."""
    others = _other_accounts_mail(person.account_id) if not person.platform_wide else set()
    removed = 0
    for path, _text in list(_naming(person.needles())):
        if others and _message_ids(path.read_bytes()) in others:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("erasure removed %d mails from the outbox", removed)


def _other_accounts_mail(account_id: int | None) -> set[str]:
    """The Message-IDs of mails sent by accounts other than ``account_id``."""
    return _sent_mail_ids(account_id, own=False)


def _sent_mail_ids(account_id: int | None, own: bool) -> set[str]:
    """The Message-IDs of the campaign and transactional mails sent by ``account_id``
    (``own``) or by every other account."""
    from campaigns.models import Campaign, Message, TransactionalMessage

    def of(column: Any) -> Any:
        return column == account_id if own else column != account_id

    campaign_mail = (
        select(Message.smtp_message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(of(Campaign.account_id), Message.smtp_message_id.is_not(None))
    )
    transactional_mail = select(TransactionalMessage.smtp_message_id).where(
        of(TransactionalMessage.account_id), TransactionalMessage.smtp_message_id.is_not(None)
    )
    return {
        value
        for query in (campaign_mail, transactional_mail)
        for value in db.session.scalars(query)
        if value
    }


def sweep_outbox(now: datetime) -> int:
    """Delete the outbox's mails written more than ``OUTBOX_KEEP_DAYS`` ago; return how many.
    Judged by the file's time, so running it twice or late removes each once."""
    cutoff = _utc_epoch(now - timedelta(days=setting("OUTBOX_KEEP_DAYS")))
    removed = 0
    for path in list(_outbox_files()):
        try:
            if path.stat().st_mtime <= cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _utc_epoch(moment: datetime) -> float:
    """Epoch seconds of a naive UTC datetime (the platform's convention) or an aware one."""
    return moment.replace(tzinfo=UTC).timestamp() if moment.tzinfo is None else moment.timestamp()


def _message_ids(raw: bytes) -> str:
    from email.parser import BytesHeaderParser

    headers = BytesHeaderParser(policy=email_policy.default).parsebytes(raw)
    return str(headers.get("Message-ID", "")).strip()


def _recipients(raw: bytes) -> set[str]:
    from email.parser import BytesHeaderParser
    from email.utils import getaddresses

    headers = BytesHeaderParser(policy=email_policy.default).parsebytes(raw)
    values = [str(v) for name in ("To", "Cc") for v in headers.get_all(name, [])]
    return {address.casefold() for _name, address in getaddresses(values) if address}


def delete_account_outbox(account_id: int) -> None:
    """Delete the outbox's mails of the account: its campaign and transactional messages (by
    Message-ID), mails to its members who belong to no other account, and other mails to its
    contacts that name the account (sign-up confirmations). Another account's mail to the
    same address stays."""
    from accounts.models import Account, Membership, User
    from subscribers.models import Contact

    if outbox_dir() is None:
        return
    account = db.session.get(Account, account_id)
    account_name = (account.name if account else "").casefold()
    own_ids = _sent_mail_ids(account_id, own=True)
    other_ids = _other_accounts_mail(account_id)
    elsewhere = select(Membership.user_id).where(Membership.account_id != account_id)
    members = {
        email.casefold()
        for email in db.session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.account_id == account_id, User.id.not_in(elsewhere))
        )
    }
    contacts = {
        email.casefold()
        for email in db.session.scalars(
            select(Contact.email).where(Contact.account_id == account_id)
        )
    }
    for path in list(_outbox_files()):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        message_id = _message_ids(raw)
        if message_id in other_ids:
            continue
        to = _recipients(raw)
        if (
            message_id in own_ids
            or to & members
            or (to & contacts and account_name and account_name in mail_text(raw))
        ):
            path.unlink(missing_ok=True)
