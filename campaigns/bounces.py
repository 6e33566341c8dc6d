"""Bounces and complaints that come back after sending, mapped to their Message row.

Three ways in, one way down to :func:`record_bounce` (which the send loop also calls for a
refusal or a final deferral during the SMTP exchange):

* RFC 3464 delivery-status notifications and RFC 5965 (ARF) feedback reports read from a
  Maildir or an IMAP mailbox (:func:`process_maildir`, :func:`process_imap`);
* Amazon SES notifications delivered by SNS, whose signature is verified against the signing
  certificate (:func:`handle_sns`);
* a generic JSON webhook authenticated by an HMAC of the body (:func:`handle_generic`).

A notification names its message by the original ``Message-ID`` (we make one per message and
store it) or by the VERP envelope sender (``RETURN_PATH``). Only the SMTP status (``550 5.1.1``)
is kept; reports are deleted from the mailbox once recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import imaplib
import json
import logging
import mailbox
import re
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage, Message
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import current_app
from sqlalchemy import func, select

from campaigns import webhook_events
from campaigns.models import Bounce, Campaign, TransactionalMessage, TransactionalStatus
from campaigns.models import Message as MessageRow
from campaigns.render import parse_verp
from campaigns.settings import setting
from core import db
from core.db import utcnow
from privacy import engine_gate
from subscribers.models import Contact
from subscribers.suppression import suppress
from webhooks.models import EventType

log = logging.getLogger(__name__)

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CODE = re.compile(r"\b([245]\d\d)\b")


def record_bounce(
    message_id: int,
    kind: str,
    source: str,
    diagnostic: str = "",
    occurred_at: datetime | None = None,
) -> bool:
    """Record a bounce or complaint for a message and suppress as the rules say; commit.

    Hard bounces and complaints suppress the address at once; soft bounces once the contact
    has ``SOFT_BOUNCE_LIMIT`` of them. Idempotent per (message, kind, source). False when the
    message is unknown.
    """
    if kind not in ("hard", "soft", "complaint"):
        raise ValueError(f"unknown bounce kind {kind!r}")
    message = db.session.get(MessageRow, message_id)
    if message is None:
        return False
    exists = db.session.scalar(
        select(Bounce.id).where(
            Bounce.message_id == message_id, Bounce.kind == kind, Bounce.source == source
        )
    )
    if exists is None:
        db.session.add(
            Bounce(
                message_id=message_id,
                kind=kind,
                source=source,
                diagnostic=diagnostic[:64],
                occurred_at=occurred_at or utcnow(),
            )
        )
    if message.bounce_kind != "complaint":
        message.bounce_kind = (
            kind if message.bounce_kind != "hard" or kind == "complaint" else "hard"
        )
    db.session.flush()
    campaign = db.session.get(Campaign, message.campaign_id)
    contact = db.session.get(Contact, message.contact_id) if message.contact_id else None
    if campaign is not None and contact is not None:
        # engine input: hard bounce, complaint or soft bounce (a deferral for pacing).
        engine_gate.record_delivery_outcome(
            campaign.account_id,
            contact.id,
            contact.email,
            {"hard": "bounced", "complaint": "complained", "soft": "deferred"}[kind],
            occurred_at or utcnow(),
        )
        if kind == "complaint":
            suppress(campaign.account_id, contact.email, "complaint")
        elif kind == "hard":
            suppress(campaign.account_id, contact.email, "hard_bounce")
        else:
            soft = db.session.scalar(
                select(func.count(func.distinct(Bounce.message_id)))
                .join(MessageRow, MessageRow.id == Bounce.message_id)
                .where(MessageRow.contact_id == contact.id, Bounce.kind == "soft")
            )
            if (soft or 0) >= int(setting("SOFT_BOUNCE_LIMIT")):
                suppress(campaign.account_id, contact.email, "hard_bounce")
    if exists is None:  # once per (message, kind, source), like the bounce row
        event_type = (
            EventType.MESSAGE_COMPLAINED if kind == "complaint" else EventType.MESSAGE_BOUNCED
        )
        extra = {"source": source, "diagnostic": diagnostic[:64]}
        if kind != "complaint":
            extra["bounce"] = kind
        webhook_events.message_event(message_id, event_type, extra)
    db.session.commit()
    return True


class SignatureError(ValueError):
    """A webhook whose signature does not verify."""


@dataclass(frozen=True)
class Notification:
    """One bounce or complaint about one message, reduced to what we keep."""

    kind: str  # hard | soft | complaint
    source: str  # dsn | arf | ses | webhook
    message_id_header: str | None
    return_path: str | None
    diagnostic: str
    occurred_at: datetime | None = None


def reduce_diagnostic(*texts: str | None) -> str:
    """``"550 5.1.1"``-style status from free text; the text itself is never kept."""
    joined = " ".join(t for t in texts if t)
    status = _STATUS.search(joined)
    code = _CODE.search(joined)
    parts = []
    if code:
        parts.append(code.group(1))
    if status:
        parts.append(".".join(status.groups()))
    return " ".join(parts)


def _named_row(model: Any, prefix: str, message_id_header: str | None) -> int | None:
    """The row of ``model`` whose id our Message-ID names (``<{prefix}{id}.{mac}@domain>``),
    believed only if the whole header is the one that row was sent with."""
    if not message_id_header:
        return None
    value = message_id_header.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    named = re.match(rf"<{prefix}(\d{{1,18}})\.", value)
    if named is None:
        return None
    found = db.session.scalar(
        select(model.id).where(model.id == int(named.group(1)), model.smtp_message_id == value)
    )
    return None if found is None else int(found)


def find_message(message_id_header: str | None, return_path: str | None) -> int | None:
    """The message row a notification refers to, by Message-ID, else by VERP address."""
    found = _named_row(MessageRow, "m", message_id_header)
    if found is None and return_path:
        return parse_verp(return_path, str(current_app.config["SECRET_KEY"]))
    return found


def find_transactional(message_id_header: str | None, return_path: str | None) -> int | None:
    """The transactional message a notification refers to (``<t{id}.{mac}@domain>``, or the
    VERP address ``bounces+t{id}-{mac}@``), by the same rules as :func:`find_message`."""
    found = _named_row(TransactionalMessage, "t", message_id_header)
    if found is None and return_path:
        return parse_verp(return_path, str(current_app.config["SECRET_KEY"]), "t")
    return found


def record_transactional_bounce(
    message_id: int, kind: str, diagnostic: str = "", occurred_at: datetime | None = None
) -> bool:
    """Record a bounce or complaint of a transactional message; commit. A bounce (hard or
    soft) makes a sent message ``bounced``; a hard bounce or a complaint suppresses the address
    for the account, as for a campaign's message. Idempotent. False when the message is
    unknown. (Transactional messages do not feed the optimisation engine.)"""
    if kind not in ("hard", "soft", "complaint"):
        raise ValueError(f"unknown bounce kind {kind!r}")
    message = db.session.get(TransactionalMessage, message_id)
    if message is None:
        return False
    if message.bounce_kind not in ("complaint", "hard") or kind == "complaint":
        message.bounce_kind = kind
    if kind != "complaint" and message.status in (
        TransactionalStatus.SENT,
        TransactionalStatus.BOUNCED,
    ):
        message.status = TransactionalStatus.BOUNCED
        message.bounced_at = message.bounced_at or occurred_at or utcnow()
        message.bounce_diagnostic = diagnostic[:64]
    event = EventType.MESSAGE_COMPLAINED if kind == "complaint" else EventType.MESSAGE_BOUNCED
    webhook_events.transactional_event(
        message.id, event, {"kind": kind, "diagnostic": diagnostic[:64]}
    )
    if kind in ("hard", "complaint") and message.to_email:
        reason = "complaint" if kind == "complaint" else "hard_bounce"
        suppress(message.account_id, message.to_email, reason)
    db.session.commit()
    return True


def record(notifications: Iterable[Notification]) -> int:
    """Record notifications that map to a message (a campaign's or a transactional one);
    return how many did."""
    recorded = 0
    for note in notifications:
        message_id = find_message(note.message_id_header, note.return_path)
        if message_id is not None:
            if record_bounce(message_id, note.kind, note.source, note.diagnostic, note.occurred_at):
                recorded += 1
            continue
        transactional_id = find_transactional(note.message_id_header, note.return_path)
        if transactional_id is not None and record_transactional_bounce(
            transactional_id, note.kind, note.diagnostic, note.occurred_at
        ):
            recorded += 1
    return recorded


# --------------------------------------------------------------------------- DSN and ARF


def _original_headers(report: EmailMessage) -> Message | None:
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            return message_from_string(text, policy=policy.default)
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
    return None


def _report_addresses(report: EmailMessage) -> list[str]:
    return [str(report[name]) for name in ("To", "Delivered-To", "X-Original-To") if report[name]]


def parse_report(raw: bytes) -> list[Notification]:
    """Notifications in an RFC 3464 DSN or an RFC 5965 feedback report ([] for anything else).

    A DSN's recipients with ``Action: failed`` become hard (5.x.x) or soft (4.x.x) bounces;
    ``delayed`` ones are not bounces. A feedback report becomes a complaint.
    """
    report = message_from_bytes(raw, policy=policy.default)
    assert isinstance(report, EmailMessage)
    if report.get_content_type() != "multipart/report":
        return []
    report_type = str(report.get_param("report-type") or "").lower()
    original = _original_headers(report)
    original_id = str(original["Message-ID"]) if original and original["Message-ID"] else None
    addresses = _report_addresses(report)
    if original is not None and original["Return-Path"]:
        addresses.append(str(original["Return-Path"]))
    key = str(current_app.config["SECRET_KEY"])
    # A campaign message's VERP address, or a transactional message's (prefix "t").
    return_path = next(
        (a for a in addresses if parse_verp(a, key) or parse_verp(a, key, "t")), None
    )
    notes: list[Notification] = []
    if report_type == "delivery-status":
        for part in report.walk():
            if part.get_content_type() != "message/delivery-status":
                continue
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                continue
            for block in blocks[1:]:  # the first block is per-message
                if not isinstance(block, Message):
                    continue
                action = str(block.get("Action", "")).strip().lower()
                if action != "failed":
                    continue
                status = str(block.get("Status", ""))
                diagnostic = reduce_diagnostic(str(block.get("Diagnostic-Code", "")), status)
                kind = "hard" if status.strip().startswith("5") else "soft"
                notes.append(Notification(kind, "dsn", original_id, return_path, diagnostic))
    elif report_type == "feedback-report":
        feedback_type = "abuse"
        for part in report.walk():
            if part.get_content_type() == "message/feedback-report":
                fields = part.get_payload()
                if isinstance(fields, list) and fields and isinstance(fields[0], Message):
                    feedback_type = str(fields[0].get("Feedback-Type", "abuse")).strip().lower()
        if feedback_type in ("abuse", "fraud", "virus", "other"):
            notes.append(
                Notification("complaint", "arf", original_id, return_path, f"arf {feedback_type}")
            )
    return notes


def process_maildir(path: str) -> int:
    """Read every report in the Maildir, record what maps to a message, delete those reports.

    Messages that are not reports, or name no message of ours, are moved to ``cur`` and kept
    for a person to look at. Returns how many notifications were recorded.
    """
    box = mailbox.Maildir(path, create=True)
    recorded = 0
    for key in list(box.iterkeys()):
        maildir_message = box.get_message(key)
        if maildir_message.get_subdir() != "new":
            continue
        notes = parse_report(maildir_message.as_bytes())
        count = record(notes)
        recorded += count
        if notes and count:
            box.remove(key)
        else:
            maildir_message.set_subdir("cur")
            maildir_message.add_flag("S")
            box[key] = maildir_message
    box.close()
    return recorded


#: How long the IMAP reader waits for the server before giving up (this run).
IMAP_TIMEOUT_SECONDS = 30.0


def process_imap(url: str) -> int:
    """Read unseen reports from ``imaps://user:pass@host[:port]/MAILBOX`` (or ``imap://``; each
    part percent-encoded), record them and delete those recorded. Returns how many were recorded.
    Raises ``imaplib.IMAP4.error`` when the login is refused or the mailbox cannot be selected."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    client: imaplib.IMAP4 = (
        imaplib.IMAP4_SSL(host, parts.port or 993, timeout=IMAP_TIMEOUT_SECONDS)
        if parts.scheme == "imaps"
        else imaplib.IMAP4(host, parts.port or 143, timeout=IMAP_TIMEOUT_SECONDS)
    )
    recorded = 0
    try:
        client.login(unquote(parts.username or ""), unquote(parts.password or ""))
        quoted = '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
        status, detail = client.select(quoted)
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select IMAP mailbox {folder!r}: {detail[-1]!r}")
        _status, data = client.search(None, "UNSEEN")
        for number in (data[0] or b"").split():
            # PEEK: a report stays unseen until it is recorded (or kept for a person), so a
            # failure while recording (database down) leaves it for the next run.
            _status, fetched = client.fetch(number.decode(), "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), b"")
            notes = parse_report(raw)
            count = record(notes)
            recorded += count
            if notes and count:
                client.store(number.decode(), "+FLAGS", "\\Deleted")
            else:
                client.store(number.decode(), "+FLAGS", "\\Seen")
        client.expunge()
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            log.warning("IMAP logout failed")
    return recorded


def process_configured_mailboxes(now: datetime | None = None) -> int:
    """Read ``BOUNCE_MAILDIR`` and ``BOUNCE_IMAP_URL`` when set; return what was recorded.
    Nothing is read when neither is set. A scheduler job (``now`` is unused: what is read is
    what the mailboxes hold)."""
    recorded = 0
    if setting("BOUNCE_MAILDIR"):
        recorded += process_maildir(str(setting("BOUNCE_MAILDIR")))
    if setting("BOUNCE_IMAP_URL"):
        recorded += process_imap(str(setting("BOUNCE_IMAP_URL")))
    return recorded


# --------------------------------------------------------------------------- Amazon SES via SNS

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
#: Characters that ``urlsplit`` silently drops or that a URL of Amazon's never holds.
_URL_UNSAFE = re.compile(r"[^\x21-\x7e]|\\")

#: How long one certificate (or subscription confirmation) fetch may take, and how much of it
#: is read: an SNS certificate is about 2 KB.
SNS_FETCH_TIMEOUT_SECONDS = 3.0
SNS_FETCH_MAX_BYTES = 64 * 1024
#: How many signing certificates are kept (AWS signs with one per region at a time).
SNS_CERT_CACHE_SIZE = 16

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


class FetchError(RuntimeError):
    """Amazon could not be reached for a certificate or a subscription (answer 503)."""


class _CertificateCache:
    """The public keys of the last few signing certificates, least recently used dropped first.

    Only certificates that parse are kept, so a burst of requests cannot grow it past ``size``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, url: str) -> rsa.RSAPublicKey | None:
        with self._lock:
            key = self._keys.get(url)
            if key is not None:
                self._keys.move_to_end(url)
            return key

    def put(self, url: str, key: rsa.RSAPublicKey) -> None:
        with self._lock:
            self._keys[url] = key
            self._keys.move_to_end(url)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


_CERTS = _CertificateCache(SNS_CERT_CACHE_SIZE)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # The address was checked; a redirect would lead the fetch somewhere that was not.
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _http_get(url: str) -> bytes:
    with _OPENER.open(url, timeout=SNS_FETCH_TIMEOUT_SECONDS) as response:  # https only, checked
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        body: bytes = response.read(SNS_FETCH_MAX_BYTES + 1)
        if len(body) > SNS_FETCH_MAX_BYTES:
            raise OSError("response too large")
        return body


def _fetch(url: str) -> bytes:
    """GET an address already checked by :func:`sns_url_allowed`; raise FetchError on failure."""
    injected = current_app.config.get("SNS_HTTP_GET")
    get: Callable[[str], bytes] = injected if callable(injected) else _http_get
    try:
        return get(url)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts, 4xx/5xx
        log.warning("SNS fetch failed: %s", type(exc).__name__)
        raise FetchError("Amazon SNS could not be reached") from exc


def sns_url_allowed(url: str, *, certificate: bool = False) -> bool:
    """True only for ``https://sns.<region>.amazonaws.com[.cn]/…`` written plainly: no user
    info, no port, no IP literal, no characters a URL parser might drop or read differently;
    a certificate address must also be a path ending in ``.pem`` with no query or fragment."""
    if len(url) > 2048 or _URL_UNSAFE.search(url):
        return False
    parts = urlsplit(url)
    # netloc == hostname rules out "user@", ":port", "[::1]" and upper case in one comparison.
    if parts.scheme != "https" or not parts.hostname or parts.netloc != parts.hostname:
        return False
    if not _SNS_HOST.match(parts.hostname):
        return False
    if certificate:
        return parts.path.endswith(".pem") and not parts.query and not parts.fragment
    return True


def _topic_accepted(envelope: dict[str, Any]) -> bool:
    allowed = [a.strip() for a in str(setting("SES_TOPIC_ARNS")).split(",") if a.strip()]
    return not allowed or envelope.get("TopicArn") in allowed


def _signing_key(cert_url: str) -> rsa.RSAPublicKey:
    key = _CERTS.get(cert_url)
    if key is not None:
        return key
    try:
        public_key = x509.load_pem_x509_certificate(_fetch(cert_url)).public_key()
    except ValueError as exc:
        raise SignatureError("signing certificate does not parse") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("unexpected key type")
    _CERTS.put(cert_url, public_key)
    return public_key


def verify_sns(envelope: dict[str, Any]) -> None:
    """Raise SignatureError unless the SNS message is signed by the certificate it names.

    Everything that can be checked without the network is checked first (message type,
    topic allow-list, certificate address, signature encoding), so a forged request never
    makes us fetch anything. Raises FetchError when a genuine-looking certificate cannot be
    fetched.
    """
    kind = envelope.get("Type")
    fields = _SIGNED_FIELDS.get(str(kind))
    if fields is None:
        raise SignatureError("unknown SNS message type")
    if not _topic_accepted(envelope):
        raise SignatureError("topic not accepted")
    cert_url = str(envelope.get("SigningCertURL", ""))
    if not sns_url_allowed(cert_url, certificate=True):
        raise SignatureError("signing certificate is not on an SNS address")
    lines = []
    for name in fields:
        if name in envelope and envelope[name] is not None:
            lines.append(f"{name}\n{envelope[name]}\n")
    payload = "".join(lines).encode()
    try:
        signature = base64.b64decode(str(envelope.get("Signature", "")), validate=True)
    except ValueError as exc:
        raise SignatureError("signature is not base64") from exc
    if not signature:
        raise SignatureError("no signature")
    algorithm: hashes.HashAlgorithm = (
        hashes.SHA256() if str(envelope.get("SignatureVersion")) == "2" else hashes.SHA1()  # noqa: S303
    )
    try:
        _signing_key(cert_url).verify(signature, payload, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("SNS signature does not verify") from exc


def _ses_notifications(message: dict[str, Any]) -> list[Notification]:
    kind = str(message.get("notificationType") or message.get("eventType") or "")
    mail = message.get("mail") or {}
    headers = mail.get("commonHeaders") or {}
    original_id = headers.get("messageId")
    if not original_id:
        for header in mail.get("headers") or []:
            if str(header.get("name", "")).lower() == "message-id":
                original_id = header.get("value")
    return_path = mail.get("source")
    notes = []
    if kind == "Bounce":
        bounce = message.get("bounce") or {}
        bounce_kind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        for recipient in bounce.get("bouncedRecipients") or [{}]:
            diagnostic = reduce_diagnostic(recipient.get("diagnosticCode"), recipient.get("status"))
            notes.append(Notification(bounce_kind, "ses", original_id, return_path, diagnostic))
    elif kind == "Complaint":
        complaint = message.get("complaint") or {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        notes.append(
            Notification("complaint", "ses", original_id, return_path, f"arf {feedback}"[:64])
        )
    return notes


def handle_sns(body: bytes) -> str:
    """Handle one SNS POST: verify it, confirm a subscription, or record SES notifications.

    Returns what happened; raises SignatureError (answer 403), ValueError (answer 400) or
    FetchError (answer 503, so SNS retries later).
    """
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(envelope, dict):
        raise ValueError("not an SNS message")
    verify_sns(envelope)
    if envelope["Type"] == "SubscriptionConfirmation":
        subscribe_url = str(envelope.get("SubscribeURL", ""))
        if not sns_url_allowed(subscribe_url):
            raise SignatureError("subscribe URL is not on an SNS address")
        _fetch(subscribe_url)
        return "subscribed"
    if envelope["Type"] != "Notification":
        return "ignored"
    try:
        message = json.loads(envelope.get("Message", ""))
    except ValueError as exc:
        raise ValueError("SNS Message is not JSON") from exc
    return f"recorded {record(_ses_notifications(message))}"


# --------------------------------------------------------------------------- generic webhook


def generic_signature(secret: str, body: bytes) -> str:
    """The ``X-Envoy-Signature`` value for a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def handle_generic(body: bytes, signature: str) -> int:
    """Record the events of a signed generic webhook; return how many mapped to a message.

    Body: ``{"events": [{"type": "hard|soft|complaint", "message_id": "<Message-ID>",
    "return_path": "optional VERP address", "status": "5.1.1", "occurred_at": ISO-8601}]}``
    (a single event object is accepted too). Raises SignatureError or ValueError.
    """
    secret = str(setting("BOUNCE_WEBHOOK_SECRET"))
    if not secret:
        raise SignatureError("the generic bounce webhook is not configured")
    if not hmac.compare_digest(generic_signature(secret, body), signature.strip()):
        raise SignatureError("bad signature")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError("not JSON") from exc
    events = data.get("events", [data]) if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise ValueError("events must be a list")
    notes = []
    for event in events:
        if not isinstance(event, dict) or event.get("type") not in ("hard", "soft", "complaint"):
            raise ValueError("each event needs a type: hard, soft or complaint")
        occurred = None
        if event.get("occurred_at"):
            try:
                occurred = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))
                if occurred.tzinfo is not None:
                    occurred = occurred.astimezone(UTC).replace(tzinfo=None)
            except ValueError as exc:
                raise ValueError("occurred_at must be ISO-8601") from exc
        notes.append(
            Notification(
                kind=str(event["type"]),
                source="webhook",
                message_id_header=event.get("message_id"),
                return_path=event.get("return_path"),
                diagnostic=reduce_diagnostic(str(event.get("status", ""))),
                occurred_at=occurred,
            )
        )
    return record(notes)
