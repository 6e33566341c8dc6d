"""Data-subject requests: receive, confirm, fulfil; erasure, restriction, objection, withdrawal,
rectification; single-use downloads and tokens; the audit log.

Guarantees:

- The public answer to a request never depends on whether the address is known: a confirmation
  link goes to the address in every case and nothing is looked up before it is clicked.
- A confirmation link is signed for ``Purpose.DATA_REQUEST_CONFIRM``, carries only the request
  id, expires after ``DATA_REQUEST_MAX_AGE`` and works once (the request's status is claimed
  with a conditional UPDATE, so two clicks at the same time fulfil it once).
- Downloads are signed for ``Purpose.DOWNLOAD``, expire after ``DOWNLOAD_MAX_AGE`` and work once;
  their content is deleted when fetched.
- The audit log names the address only by its keyed hash.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from core import db
from core.db import utcnow
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.mail import PermanentMailError, TransientMailError, send_system_mail
from core.signing import BadTokenError, Purpose, sign_timed, unsign_timed
from core.urls import external_url
from privacy import queries, registry
from privacy.models import (
    REQUEST_KINDS,
    AuditEntry,
    ConfirmationMail,
    DataRequest,
    DataRequestStatus,
    Download,
    RequestAccount,
    SpentToken,
)
from privacy.policy import reduce_ip
from subscribers.models import Contact, RestrictedBy, Subscription, SubscriptionStatus
from subscribers.normalise import normalise_email
from subscribers.suppression import address_hash, suppress
from webhooks import events as webhook_events
from webhooks.models import EventType

log = logging.getLogger(__name__)

SUBJECT = "data-subject"


class RateLimitedError(Exception):
    """Too many requests from this client or for this address in the current window."""


@dataclass
class Outcome:
    """What fulfilling a request produced, for the page that answers the confirmation."""

    kind: str
    found: bool
    report: dict[str, Any] | None = None
    downloads: list[tuple[str, str]] = field(default_factory=list)  # (label, token)
    accounts: int = 0


def _audit(
    event: str,
    kind: str,
    actor: str,
    *,
    request_id: int | None = None,
    account_id: int | None = None,
    hashed: str | None = None,
    detail: str = "",
) -> None:
    db.session.add(
        AuditEntry(
            request_id=request_id,
            account_id=account_id,
            kind=kind,
            event=event,
            actor=actor,
            address_hash=hashed,
            detail=detail,
            at=utcnow(),
        )
    )


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=int(current_app.config[name]))


# --- The public form ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """What the public form may truthfully say after a request. Computed from the email window
    of the address only (never from whether the address is held), so a known and an unknown
    address get the same answer."""

    mailed: bool  # a confirmation email went out for this request
    sent_at: datetime  # when the confirmation email now in the inbox was sent
    link_valid_until: datetime  # that email's link works until then, if not used yet
    next_email_at: datetime  # from then on the address can be sent a new email
    link_hours: int
    window_minutes: int


def submit_request(
    email: str, kind: str, client_ip: str | None, proposed: dict[str, str] | None = None
) -> Submitted:
    """Record a request and email its confirmation link to ``email``.

    The answer depends only on the address's email window, never on whether the address is
    held, so the caller shows the same page for known and unknown addresses. Raises
    ValidationError for bad input and RateLimitedError beyond the per-client or per-address
    limits. At most one confirmation email goes to an address per ``DATA_REQUEST_EMAIL_WINDOW``;
    a request inside the window sends nothing and is recorded as expired.
    """
    if kind not in REQUEST_KINDS:
        raise ValidationError("Choose what you would like us to do.", field="kind")
    address = normalise_email(email)
    clean_proposal: dict[str, str] | None = None
    if kind == "rectify":
        clean_proposal = {k: (v or "").strip()[:500] for k, v in (proposed or {}).items() if v}
        if not clean_proposal:
            raise ValidationError("Tell us what should be corrected.", field="new_name")
    hashed = address_hash(address)
    client = reduce_ip(client_ip) or "unknown"
    now = utcnow()
    window_start = now - _seconds("DATA_REQUEST_LIMIT_WINDOW")
    from_client = db.session.scalar(
        select(func.count())
        .select_from(DataRequest)
        .where(DataRequest.client_prefix == client, DataRequest.created_at >= window_start)
    )
    for_address = db.session.scalar(
        select(func.count())
        .select_from(DataRequest)
        .where(DataRequest.address_hash == hashed, DataRequest.created_at >= window_start)
    )
    config = current_app.config
    if (from_client or 0) >= config["DATA_REQUEST_LIMIT_PER_CLIENT"] or (
        for_address or 0
    ) >= config["DATA_REQUEST_LIMIT_PER_ADDRESS"]:
        _audit("throttled", kind, SUBJECT, hashed=hashed, detail="rate limit")
        db.session.commit()
        raise RateLimitedError()
    db.session.commit()  # end the reading transaction: the claim below starts with a write
    may_mail, sent_at = _claim_confirmation_mail(hashed, now)
    answer = Submitted(
        mailed=may_mail,
        sent_at=sent_at,
        link_valid_until=sent_at + _seconds("DATA_REQUEST_MAX_AGE"),
        next_email_at=sent_at + _seconds("DATA_REQUEST_EMAIL_WINDOW"),
        link_hours=int(config["DATA_REQUEST_MAX_AGE"]) // 3600,
        window_minutes=max(1, int(config["DATA_REQUEST_EMAIL_WINDOW"]) // 60),
    )
    request = DataRequest(
        kind=kind,
        status="received",
        address_hash=hashed,
        pending_address=address,
        proposed=clean_proposal,
        client_prefix=client,
        actor=SUBJECT,
        created_at=now,
        expires_at=now + _seconds("DATA_REQUEST_MAX_AGE"),
    )
    db.session.add(request)
    db.session.flush()
    _audit("received", kind, SUBJECT, request_id=request.id, hashed=hashed)
    if not may_mail:
        # One confirmation email per address per window. The earlier link works only if it
        # was not used yet, which the answer must not reveal: it says so conditionally.
        request.status = DataRequestStatus.EXPIRED
        request.pending_address = None
        request.proposed = None
        _audit(
            "throttled",
            kind,
            SUBJECT,
            request_id=request.id,
            hashed=hashed,
            detail="a confirmation email was sent to this address in the window",
        )
        db.session.commit()
        return answer
    request.confirmation_sent_at = now
    db.session.commit()
    token = sign_timed(Purpose.DATA_REQUEST_CONFIRM, [request.id])
    link = external_url("privacy.confirm", token=token)
    hours = int(config["DATA_REQUEST_MAX_AGE"]) // 3600
    try:
        send_system_mail(
            address,
            "Confirm your data request",
            "Someone, hopefully you, used our data-request form for this address and chose:\n"
            f"  {REQUEST_KINDS[kind]}\n\n"
            f"Nothing happens until you confirm. Open this link and press the button "
            f"(valid for {hours} hours, once):\n{link}\n\n"
            "If you did not ask, ignore this message: nothing will change.",
        )
    except (TransientMailError, PermanentMailError) as exc:
        log.warning(
            "confirmation email for request %s not sent: %s", request.id, type(exc).__name__
        )
        request.confirmation_sent_at = None
        # Release the window so that trying again sends at once.
        db.session.execute(
            delete(ConfirmationMail).where(
                ConfirmationMail.address_hash == hashed, ConfirmationMail.sent_at == now
            )
        )
        db.session.commit()
        raise ValidationError(
            "We could not send the confirmation email just now. Please try again in a few minutes."
        ) from exc
    return answer


def _claim_confirmation_mail(hashed: str, now: datetime) -> tuple[bool, datetime]:
    """(True, now) when this caller may email ``hashed`` now (none sent in the window), and
    claims it; else (False, when the email of the window was sent).

    A conditional UPDATE, or an INSERT guarded by the primary key: of two concurrent callers
    only one gets True, on PostgreSQL and SQLite alike.
    """
    window_start = now - _seconds("DATA_REQUEST_EMAIL_WINDOW")
    claimed = db.session.execute(
        update(ConfirmationMail)
        .where(ConfirmationMail.address_hash == hashed, ConfirmationMail.sent_at <= window_start)
        .values(sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        return True, now
    try:
        with db.session.begin_nested():
            db.session.add(ConfirmationMail(address_hash=hashed, sent_at=now))
    except IntegrityError:
        sent_at = db.session.scalar(
            select(ConfirmationMail.sent_at).where(ConfirmationMail.address_hash == hashed)
        )
        return False, sent_at or now
    return True, now


def _request_id_from_token(token: str) -> int:
    payload = unsign_timed(
        Purpose.DATA_REQUEST_CONFIRM, token, max_age=int(current_app.config["DATA_REQUEST_MAX_AGE"])
    )
    if not isinstance(payload, list) or len(payload) != 1 or not isinstance(payload[0], int):
        raise BadTokenError("malformed")
    return int(payload[0])


def pending_request(token: str) -> DataRequest:
    """The request a confirmation link is for, if it can still be confirmed (no state change).

    Raises BadTokenError when the link is forged, expired, made for another purpose or used.
    """
    request = db.session.get(DataRequest, _request_id_from_token(token))
    if request is None or request.status != "received" or request.expires_at <= utcnow():
        raise BadTokenError("used or expired")
    return request


def confirm_request(token: str) -> Outcome:
    """Confirm a request through its link and fulfil it at once. Works once per link."""
    request_id = _request_id_from_token(token)
    now = utcnow()
    claimed = db.session.execute(
        update(DataRequest)
        .where(
            DataRequest.id == request_id,
            DataRequest.status == "received",
            DataRequest.expires_at > now,
        )
        .values(status="confirmed", confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise BadTokenError("used or expired")
    request = db.session.get(DataRequest, request_id)
    assert request is not None
    db.session.refresh(request)
    _audit("confirmed", request.kind, SUBJECT, request_id=request.id, hashed=request.address_hash)
    db.session.commit()
    return _fulfil(request)


# --- Fulfilment --------------------------------------------------------------------------------


def _owner_emails(account_id: int) -> list[str]:
    from accounts.queries import owner_emails

    return owner_emails(account_id)


def _notify_accounts(contacts: list[Contact], subject: str, body: str) -> None:
    """Tell every account concerned (its owners) what happened (GDPR art. 19)."""
    for account_id in sorted({c.account_id for c in contacts}):
        for owner in _owner_emails(account_id):
            try:
                send_system_mail(owner, subject, body)
            except (TransientMailError, PermanentMailError) as exc:
                log.warning("notification to account %s failed: %s", account_id, type(exc).__name__)


def _link_accounts(request: DataRequest, contacts: list[Contact]) -> None:
    now = utcnow()
    for contact in contacts:
        db.session.add(
            RequestAccount(
                request_id=request.id,
                account_id=contact.account_id,
                contact_id=None if request.kind == "erase" else contact.id,
                notified_at=now,
            )
        )


def _make_download(request_id: int | None, filename: str, content_type: str, content: str) -> str:
    now = utcnow()
    download = Download(
        request_id=request_id,
        filename=filename,
        content_type=content_type,
        content=content,
        created_at=now,
        expires_at=now + _seconds("DOWNLOAD_MAX_AGE"),
    )
    db.session.add(download)
    db.session.flush()
    return sign_timed(Purpose.DOWNLOAD, [download.id])


def _fulfil(request: DataRequest) -> Outcome:
    address = request.pending_address or ""
    contacts = queries.contacts_for_address(address) if address else []
    outcome = Outcome(kind=request.kind, found=bool(contacts), accounts=len(contacts))
    kind = request.kind
    _link_accounts(request, contacts)
    stamp = utcnow().strftime("%Y%m%d")
    if kind == "access":
        outcome.report = queries.access_report(address, contacts)
        outcome.downloads.append(
            (
                "Access report (JSON)",
                _make_download(
                    request.id,
                    f"access-report-{stamp}.json",
                    "application/json",
                    queries.export_as_json(outcome.report),
                ),
            )
        )
    elif kind == "export":
        data = queries.portable_export(address, contacts)
        outcome.downloads.append(
            (
                "Export (JSON)",
                _make_download(
                    request.id,
                    f"export-{stamp}.json",
                    "application/json",
                    queries.export_as_json(data),
                ),
            )
        )
        outcome.downloads.append(
            (
                "Export (CSV)",
                _make_download(
                    request.id, f"export-{stamp}.csv", "text/csv", queries.export_as_csv(data)
                ),
            )
        )
    elif kind == "erase":
        erase_contacts(contacts, address, None)
    elif kind == "restrict":
        _set_flag(contacts, "restricted_at")
        for contact in contacts:  # the person's own: only the person lifts it
            contact.restricted_by = RestrictedBy.PERSON
    elif kind == "unrestrict":
        # Only the restrictions the person set; one an account set stays the account's.
        for contact in contacts:
            if contact.restricted_at is not None and contact.restricted_by != RestrictedBy.ACCOUNT:
                contact.restricted_at = None
                contact.restricted_by = None
    elif kind == "object":
        _set_flag(contacts, "objected_at")
        # An objection to direct marketing is absolute (art. 21(3)): every account, for good.
        # Kept as "objected", not "unsubscribed": it stops transactional mail too.
        suppress(None, address, "objected")
    elif kind == "withdraw":
        _set_flag(contacts, "consent_withdrawn_at")
        _unsubscribe_everywhere(contacts)
    # rectify: the accounts are linked (above) and notified (below); each applies it.
    request.status = DataRequestStatus.FULFILLED
    request.fulfilled_at = utcnow()
    request.pending_address = None
    account_ids: list[int | None] = [*sorted({c.account_id for c in contacts})] or [None]
    for account_id in account_ids:
        if account_id is not None:
            _security_event(account_id, None, request.id, kind)
            # No address: the request's id, its kind and how many of the account's contacts.
            webhook_events.emit(
                account_id,
                EventType.DATA_REQUEST_FULFILLED,
                {
                    "request_id": request.id,
                    "kind": kind,
                    "contacts": sum(1 for c in contacts if c.account_id == account_id),
                },
            )
        _audit(
            "fulfilled",
            kind,
            request.actor,
            request_id=request.id,
            account_id=account_id,
            hashed=request.address_hash,
            detail="" if contacts else "no account holds this address",
        )
    db.session.commit()
    _notify_for(kind, contacts, address if kind in ("erase", "rectify") else None)
    return outcome


_NOTICES = {
    "erase": (
        "A contact's data was erased",
        "A person exercised their right to erasure (GDPR art. 17). We erased their contact "
        "record, list memberships and the personal parts of sent messages and events in your "
        "account; the address is now suppressed. Please erase it from any copy you keep "
        "elsewhere.",
    ),
    "rectify": (
        "A contact asked for a correction",
        "A person asked for their data to be corrected (GDPR art. 16). Review the proposed "
        "correction and apply it under Data requests:",
    ),
    "restrict": (
        "A contact restricted processing",
        "A person restricted the processing of their data (GDPR art. 18). Their contact is kept "
        "but will not be mailed, tracked or used by the optimisation engine.",
    ),
    "unrestrict": (
        "A contact lifted their restriction",
        "A person lifted the restriction of processing they had asked for (GDPR art. 18). Their "
        "contact may be mailed again where they are subscribed. A restriction your account set "
        "itself stays until you lift it.",
    ),
    "object": (
        "A contact objected to marketing",
        "A person objected to direct marketing and profiling (GDPR art. 21). They will not be "
        "mailed, tracked or used by the optimisation engine any more.",
    ),
    "withdraw": (
        "A contact withdrew consent",
        "A person withdrew their consent (GDPR art. 7(3)). They were unsubscribed from every list "
        "and will not be mailed, tracked or used by the optimisation engine any more.",
    ),
}


def _notify_for(kind: str, contacts: list[Contact], address: str | None) -> None:
    if kind not in _NOTICES or not contacts:
        return
    subject, body = _NOTICES[kind]
    if kind == "rectify":
        body += "\n" + external_url("privacy.account_requests")
    if address and kind != "erase":
        # Not for an erasure: the notice would keep the address in the outbox it was just
        # erased from. The account finds it suppressed (a re-import is refused).
        body += f"\n\nThe address concerned: {address}"
    _notify_accounts(contacts, subject, body)


def _set_flag(contacts: list[Contact], column: str) -> None:
    """Mark restriction, objection or withdrawal in every store of the registry (the contact's
    flag; what the engine learned from it goes)."""
    if contacts:
        registry.restrict(registry.person_for(contacts[0].email, contacts), column)


def _unsubscribe_everywhere(contacts: list[Contact]) -> None:
    if not contacts:
        return
    now = utcnow()
    db.session.execute(
        update(Subscription)
        .where(
            Subscription.contact_id.in_([c.id for c in contacts]),
            Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
        )
        .values(status=SubscriptionStatus.UNSUBSCRIBED, updated_at=now, unsubscribed_at=now)
        .execution_options(synchronize_session=False)
    )


def erase_contacts(contacts: list[Contact], address: str, account_id: int | None) -> None:
    """Erase these contacts in every store of the registry (tables, files, the outbox), then
    the contacts; suppress the address as a keyed hash (platform-wide with ``account_id``
    None, when the person asked; then no request, download or outbox mail of the address is
    left either). No commit."""
    person = registry.person_for(address, contacts, account_id)
    if contacts or account_id is None:
        registry.erase(person)
    for contact in contacts:
        # After the registry scrubbed the contact's earlier payloads; this one names only the
        # erased contact's id (which names no one any more), never the address.
        webhook_events.emit(
            contact.account_id, EventType.CONTACT_ERASED, {"contact_id": contact.id}
        )
    for contact in contacts:
        if contact in db.session:
            db.session.expunge(contact)
    if address:
        suppress(account_id, address, "erased")


# --- Marketers, for one contact of their account -----------------------------------------------


def _account_request(account_id: int, contact: Contact, kind: str, user_id: int) -> DataRequest:
    now = utcnow()
    actor = f"member:{user_id}"
    request = DataRequest(
        kind=kind,
        status="fulfilled",
        address_hash=address_hash(contact.email),
        actor=actor,
        created_at=now,
        expires_at=now,
        confirmed_at=now,
        fulfilled_at=now,
    )
    db.session.add(request)
    db.session.flush()
    db.session.add(
        RequestAccount(
            request_id=request.id,
            account_id=account_id,
            contact_id=None if kind == "erase" else contact.id,
            notified_at=now,
        )
    )
    for event in ("received", "fulfilled"):
        _audit(
            event,
            kind,
            actor,
            request_id=request.id,
            account_id=account_id,
            hashed=request.address_hash,
        )
    _security_event(account_id, user_id, request.id, kind, contact.id)
    return request


def _security_event(
    account_id: int,
    user_id: int | None,
    request_id: int,
    kind: str,
    contact_id: int | None = None,
) -> None:
    """Record a fulfilled request (a member's export of a contact as an export) in the
    account's security log: ids only, never the address. No commit."""
    from accounts.audit import record_security_event
    from accounts.models import SecurityEventKind

    details: dict[str, Any] = {"request_id": request_id, "request": kind}
    if contact_id is not None and kind != "erase":
        details["contact_id"] = contact_id
    event = SecurityEventKind.DATA_REQUEST_FULFILLED
    if kind == "export" and user_id is not None:
        event = SecurityEventKind.CONTACTS_EXPORTED
        details["rows"] = 1
    record_security_event(account_id, user_id, event, details)


def _account_contact(account_id: int, contact_id: int) -> Contact:
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if contact is None:
        raise NotFoundError("contact")
    return contact


def contact_report(account_id: int, contact_id: int) -> dict[str, Any]:
    """The access report for one contact of the account (NotFoundError for another's)."""
    contact = _account_contact(account_id, contact_id)
    return queries.access_report(contact.email, [contact], account_id)


def contact_export(account_id: int, contact_id: int, fmt: str, user_id: int) -> tuple[str, str]:
    """A portable export of one contact of the account, as (filename, content); audited."""
    if fmt not in ("json", "csv"):
        raise ValidationError("Choose JSON or CSV.")
    contact = _account_contact(account_id, contact_id)
    data = queries.portable_export(contact.email, [contact], account_id)
    _account_request(account_id, contact, "export", user_id)
    db.session.commit()
    content = queries.export_as_json(data) if fmt == "json" else queries.export_as_csv(data)
    return f"contact-{contact_id}-export.{fmt}", content


def restrict_contact(account_id: int, contact_id: int, user_id: int) -> None:
    """Restrict processing of one contact of the account: kept, never mailed, tracked or fed.

    Recorded as the account's restriction, unless the person had restricted it already (then
    it stays the person's, which the account cannot lift)."""
    contact = _account_contact(account_id, contact_id)
    if contact.restricted_at is None:
        contact.restricted_by = RestrictedBy.ACCOUNT
    _set_flag([contact], "restricted_at")
    _account_request(account_id, contact, "restrict", user_id)
    db.session.commit()


def may_lift_restriction(contact: Contact) -> bool:
    """Whether the account may lift this contact's restriction: only one it set itself.

    A restriction the person asked for (or one whose origin is unknown) stays until the person
    lifts it through the public request form, so the person never needs to be told of a lift
    they did not ask for (GDPR art. 18(3))."""
    return contact.restricted_at is not None and contact.restricted_by == RestrictedBy.ACCOUNT


def lift_restriction(account_id: int, contact_id: int, user_id: int) -> None:
    """Lift a restriction the account set; PermissionDeniedError for the person's own (see
    :func:`may_lift_restriction`), nothing changes then. Audited as the member's request."""
    contact = _account_contact(account_id, contact_id)
    if contact.restricted_at is None:
        return
    if not may_lift_restriction(contact):
        raise PermissionDeniedError(
            "The person asked for this restriction: only they can lift it, through the "
            "public request form."
        )
    contact.restricted_at = None
    contact.restricted_by = None
    _account_request(account_id, contact, "lift-restriction", user_id)
    db.session.commit()


def erase_contact(account_id: int, contact_id: int, user_id: int) -> None:
    """Erase one contact of the account; its address stays suppressed for this account only."""
    contact = _account_contact(account_id, contact_id)
    address = contact.email
    _account_request(account_id, contact, "erase", user_id)
    erase_contacts([contact], address, account_id)
    db.session.commit()


def apply_rectification(account_id: int, request_account_id: int, user_id: int) -> None:
    """Apply a proposed correction to the account's contact and record who applied it."""
    link = db.session.scalar(
        select(RequestAccount).where(
            RequestAccount.id == request_account_id, RequestAccount.account_id == account_id
        )
    )
    if link is None:
        raise NotFoundError("request")
    request = db.session.get(DataRequest, link.request_id)
    if request is None or request.kind != "rectify" or not request.proposed:
        raise NotFoundError("request")
    if link.applied_at is not None:
        raise ValidationError("This correction was already applied.")
    if link.contact_id is None:
        raise ValidationError("The contact no longer exists.")
    contact = _account_contact(account_id, link.contact_id)
    new_name = str(request.proposed.get("name") or "").strip()
    if new_name:
        contact.name = new_name[:200]
    link.applied_at = utcnow()
    link.applied_by_user_id = user_id
    _audit(
        "applied",
        "rectify",
        f"member:{user_id}",
        request_id=request.id,
        account_id=account_id,
        hashed=request.address_hash,
        detail="name corrected" if new_name else "reviewed",
    )
    _security_event(account_id, user_id, request.id, "rectify", contact.id)
    db.session.commit()


# --- Downloads and single-use tokens -----------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    filename: str
    content_type: str
    content: str


def fetch_download(token: str) -> Fetched:
    """The content of a download, once: the row is claimed, then its content deleted.

    Raises BadTokenError when forged, expired, made for another purpose or already fetched.
    """
    payload = unsign_timed(
        Purpose.DOWNLOAD, token, max_age=int(current_app.config["DOWNLOAD_MAX_AGE"])
    )
    if not isinstance(payload, list) or len(payload) != 1 or not isinstance(payload[0], int):
        raise BadTokenError("malformed")
    now = utcnow()
    claimed = db.session.execute(
        update(Download)
        .where(Download.id == payload[0], Download.used_at.is_(None), Download.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise BadTokenError("used or expired")
    download = db.session.get(Download, payload[0])
    assert download is not None
    db.session.refresh(download)
    fetched = Fetched(download.filename, download.content_type, download.content or "")
    download.content = None
    db.session.commit()
    return fetched


def spend_token(purpose: Purpose, token: str, max_age: int) -> None:
    """Mark a single-use token as used; raises BadTokenError if it already was.

    The primary key on the token's digest makes two simultaneous uses fail for one of them.
    """
    from sqlalchemy.exc import IntegrityError

    digest = hashlib.sha256(f"{purpose.value}:{token}".encode()).hexdigest()
    now = utcnow()
    if db.session.get(SpentToken, digest) is not None:
        raise BadTokenError("already used")
    try:
        with db.session.begin_nested():
            db.session.add(
                SpentToken(
                    token_digest=digest,
                    purpose=purpose.value,
                    spent_at=now,
                    expires_at=now + timedelta(seconds=max_age),
                )
            )
    except IntegrityError as exc:
        raise BadTokenError("already used") from exc


def record_lifecycle(event: str, account_id: int, actor: str, detail: str = "") -> None:
    """Add an account-lifecycle step (deletion requested/confirmed/reactivated/deleted) to the
    audit log. No commit."""
    _audit(event, "account", actor, account_id=account_id, detail=detail)
