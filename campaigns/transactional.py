"""Transactional messages: one triggered message (a receipt, a welcome mail) to one address,
asked for by the account's own systems (the API) and sent through the campaigns' pipeline.

What a request does (:func:`send_transactional`), all in one transaction:

* the content is a stored template of the account or a subject and bodies given with the
  request, compiled in the campaigns' sandbox (a broken template is refused at once), then
  personalised at send time with ``contact`` (the recipient) and ``data`` (the caller's);
* the sender must be one of the account's verified senders (``REQUIRE_VERIFIED_SENDER``);
* the address may or may not be a contact of the account. The account's contact with that
  address (case-insensitive) is found when there is one; either way the privacy rule
  :func:`privacy.policy.transactional_refusal` decides, from the contact's flags and from
  every suppression of the address (the account's and the platform's keyed hashes, erasure
  tombstones included, blocked domains, the engine's platform-wide suppression). An unsubscribe
  or a consent withdrawal does not stop a transactional message; a restriction, an objection,
  an erasure, a bounce or a complaint does. A refused request stores nothing (an erased
  person's address is not written down again) and raises :class:`RecipientRefusedError`;
* the same idempotency key (per account) returns the first request's id and sends once; the
  key with another message is refused;
* tracking: none. The message carries no beacon, no tracked link, no unsubscribe header (it is
  not marketing); asking for open or click tracking is refused (see docs/readme/sending.md).

Delivery is :mod:`campaigns.sending.transactional` (a queue job per message, taking its id).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from campaigns.input_checks import one_line
from campaigns.models import TransactionalMessage
from campaigns.render import TemplateError, compile_transactional
from campaigns.senders import is_verified_sender
from campaigns.settings import setting
from campaigns.template_library import get_template
from core import db, queue
from core.addresses import AddressError, wire_address
from core.errors import ValidationError
from privacy import engine_gate
from privacy.policy import transactional_refusal
from subscribers.models import Contact
from subscribers.normalise import normalise_email
from subscribers.suppression import suppression_reasons

#: The longest idempotency key kept (the column's length).
IDEMPOTENCY_KEY_MAX = 255
#: The most personalisation data a request may carry, as JSON.
DATA_MAX_BYTES = 64 * 1024


class RecipientRefusedError(ValidationError):
    """The privacy rules forbid mailing this address; ``str()`` says why without naming it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"This address may not be mailed: {reason}.", field="to")
        self.reason = reason


def contact_for_address(account_id: int, address: str) -> Contact | None:
    """The account's contact with ``address`` (case-insensitive), or None."""
    return db.session.scalar(
        select(Contact).where(
            Contact.account_id == account_id, func.lower(Contact.email) == address.lower()
        )
    )


def refusal_for(account_id: int, address: str, contact: Contact | None) -> str | None:
    """Why the account may not send a transactional message to ``address`` now, or None:
    :func:`privacy.policy.transactional_refusal` on the contact and every suppression."""
    reasons = suppression_reasons(account_id, address)
    if engine_gate.engine_suppressed(account_id, [address]):
        reasons.add("engine")
    return transactional_refusal(contact, reasons)


def _digest(fields: dict[str, Any]) -> str:
    encoded = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _address(raw: str) -> str:
    try:
        address = normalise_email(raw)
        wire_address(address)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="to") from exc
    except AddressError as exc:
        raise ValidationError(f"This address cannot be sent to: {exc}", field="to") from exc
    return address


def _content(
    account_id: int,
    template_id: int | None,
    subject: str | None,
    html: str | None,
    text: str | None,
) -> tuple[str, str, str]:
    """(subject, html, text) from the template or the request; ValidationError otherwise."""
    if template_id is not None:
        if subject or html or text:
            raise ValidationError(
                "Give a template or a subject and body, not both.", field="template_id"
            )
        template = get_template(account_id, template_id)
        subject, html, text = template.subject, template.html_body, template.text_body
    subject = one_line(subject or "", "subject", "subject")
    if not subject:
        raise ValidationError("Give a subject (or a template that has one).", field="subject")
    if not (html or "").strip():
        raise ValidationError("Give an HTML body (or a template that has one).", field="html")
    return subject, html or "", text or ""


def _check_templates(subject: str, html: str, text: str) -> None:
    """ValidationError when the templates do not compile (an error that depends on the data
    is the message's own, found when it is sent)."""
    try:
        compile_transactional(subject=subject, html=html, text=text)
    except TemplateError as exc:
        raise ValidationError(f"Personalisation error: {exc}", field="html") from exc


def send_transactional(
    account_id: int,
    to_address: str,
    *,
    from_email: str,
    from_name: str = "",
    reply_to: str = "",
    to_name: str = "",
    template_id: int | None = None,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    track_opens: bool = False,
    track_clicks: bool = False,
) -> int:
    """Queue one transactional message and return its id; commits, and its delivery job is
    enqueued after the commit.

    Idempotent on ``idempotency_key`` (per account): a repeat with the same request returns
    the first id and queues nothing; the same key with a different request is a
    ValidationError. Raises :class:`RecipientRefusedError` when the privacy rules forbid the
    address (nothing is stored), ValidationError for bad input, NotFoundError for a template
    of another account.
    """
    from campaigns import tasks

    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationError("The idempotency key is too long (255 at most).", field="key")
    data = dict(data or {})
    if len(json.dumps(data, default=str).encode()) > DATA_MAX_BYTES:
        raise ValidationError("The data is too large (64 KB of JSON at most).", field="data")
    fields = {
        "to": to_address,
        "to_name": to_name,
        "from_email": from_email,
        "from_name": from_name,
        "reply_to": reply_to,
        "template_id": template_id,
        "subject": subject,
        "html": html,
        "text": text,
        "data": data,
        "track_opens": track_opens,
        "track_clicks": track_clicks,
    }
    digest = _digest(fields)
    if key is not None:
        existing = _by_key(account_id, key)
        if existing is not None:
            return _same_request(existing, digest)
    if track_opens or track_clicks:
        raise ValidationError(
            "Transactional messages are not tracked: open and click tracking are not available "
            "for them.",
            field="track_opens" if track_opens else "track_clicks",
        )
    address = _address(to_address)
    sender = normalise_email(one_line(from_email, "from_email", "sender address"))
    if setting("REQUIRE_VERIFIED_SENDER") and not is_verified_sender(account_id, sender):
        raise ValidationError(
            f"{sender} is not a verified sender of this account (Sending settings).",
            field="from_email",
        )
    reply = normalise_email(reply_to) if reply_to.strip() else ""
    subject, html, text = _content(account_id, template_id, subject, html, text)
    _check_templates(subject, html, text)
    contact = contact_for_address(account_id, address)
    refusal = refusal_for(account_id, address, contact)
    if refusal is not None:
        raise RecipientRefusedError(refusal)
    message = TransactionalMessage(
        account_id=account_id,
        contact_id=contact.id if contact is not None else None,
        to_email=address,
        to_name=one_line(to_name, "to_name", "recipient's name")[:200],
        from_email=sender,
        from_name=one_line(from_name, "from_name", "sender name")[:200],
        reply_to=reply,
        template_id=template_id,
        subject=subject,
        html_body=html,
        text_body=text,
        data=data,
        idempotency_key=key,
        request_digest=digest,
        track_opens=False,
        track_clicks=False,
    )
    db.session.add(message)
    try:
        db.session.flush()
    except IntegrityError:  # the same key, committed by a concurrent request just now
        db.session.rollback()
        existing = _by_key(account_id, key) if key is not None else None
        if existing is None:
            raise
        return _same_request(existing, digest)
    queue.enqueue_after_commit(tasks.send_transactional, message.id)
    db.session.commit()
    return message.id


def _by_key(account_id: int, key: str) -> TransactionalMessage | None:
    return db.session.scalar(
        select(TransactionalMessage).where(
            TransactionalMessage.account_id == account_id,
            TransactionalMessage.idempotency_key == key,
        )
    )


def _same_request(existing: TransactionalMessage, digest: str) -> int:
    if existing.request_digest != digest:
        raise ValidationError(
            "This idempotency key was used for another message; use a new key.",
            field="idempotency_key",
        )
    return existing.id
