"""Delivering one transactional message (:mod:`campaigns.transactional`), at most once.

A job (:func:`deliver`, the ``send_transactional`` actor) *claims* the row (a claim token and
``claimed_at``, committed before any SMTP), checks the privacy rules again (a restriction,
objection, erasure or bounce that landed since the request stops it), renders it with the
campaigns' renderer (sandboxed personalisation, the account's DKIM key, a Message-ID and VERP
address that name the row), waits for the account's and the SMTP server's rates and the
per-domain limit (:mod:`campaigns.throttle`), notes ``smtp_started_at`` (committed), and sends
it through the account's SMTP servers (:mod:`.servers`). The outcome is written right after.

Outcomes: accepted -> ``sent`` (its content is then cleared); a deferral (4xx) or a transport
error -> back to ``queued`` with a backoff (:func:`.delivery.retry_delay`), ``failed`` after
``SEND_MAX_ATTEMPTS``; a refusal (5xx) -> ``failed`` with the reason, and a hard bounce
suppresses the address for the account; a broken personalisation or an address the server
cannot take -> ``failed`` with the reason.

A killed worker: :func:`recover` (run by the campaigns' reconciler) takes a claim not renewed
for ``SEND_CLAIM_TIMEOUT`` for a dead worker's. Before ``smtp_started_at`` nothing left, so
the row goes back to the queue; after it the server may have accepted the message, so it
fails as interrupted and is never resent (as :data:`.delivery.INTERRUPTED` for campaigns).
Rows whose queue message was lost (a broker restarted without persistence) are enqueued again.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from campaigns import webhook_events
from campaigns.models import SendingSettings, TransactionalMessage, TransactionalStatus
from campaigns.render import (
    Recipient,
    RecipientError,
    RenderedMessage,
    TemplateError,
    TransactionalSender,
    compile_transactional,
    render_transactional,
)
from campaigns.sending.delivery import INTERRUPTED, retry_delay
from campaigns.sending.rendering import dkim_for
from campaigns.sending.servers import Server, account_servers, server_connection
from campaigns.settings import setting
from campaigns.throttle import current_throttle
from core import db, queue
from core.db import rowcount, utcnow
from core.mail import (
    OutcomeUnknownError,
    PermanentMailError,
    TransientMailError,
    UnsupportedByServerError,
    smtp_status,
)
from webhooks.models import EventType

_QUEUED = TransactionalStatus.QUEUED


def _claim(message_id: int, now: datetime) -> str | None:
    """Claim the row when it is queued, due and not held by a live claim; commit."""
    token = secrets.token_hex(16)
    claimed = rowcount(
        db.session.execute(
            update(TransactionalMessage)
            .where(
                TransactionalMessage.id == message_id,
                TransactionalMessage.status == _QUEUED,
                TransactionalMessage.claim_token.is_(None),
                TransactionalMessage.due_at <= now,
            )
            .values(claim_token=token, claimed_at=now, smtp_started_at=None)
        )
    )
    db.session.commit()
    return token if claimed else None


def _write(
    message_id: int,
    token: str,
    event: EventType | None = None,
    extra: dict[str, Any] | None = None,
    **values: Any,
) -> None:
    """Write the claimed row's outcome (only while this claim holds it) and, when it did, the
    webhook ``event`` in the same transaction; commit."""
    written = rowcount(
        db.session.execute(
            update(TransactionalMessage)
            .where(TransactionalMessage.id == message_id, TransactionalMessage.claim_token == token)
            .values(**values)
        )
    )
    if written and event is not None:
        webhook_events.transactional_event(message_id, event, extra)
    db.session.commit()


#: What a message keeps once it reached a final state: no content.
_CLEARED: dict[str, Any] = {"subject": "", "html_body": "", "text_body": "", "data": None}


def _fail(message_id: int, token: str, reason: str) -> None:
    _write(
        message_id,
        token,
        EventType.MESSAGE_FAILED,
        {"reason": reason[:500]},
        status=TransactionalStatus.FAILED,
        error=reason[:500],
        failed_at=utcnow(),
        claim_token=None,
        **_CLEARED,
    )


def _again_later(message_id: int, token: str, delay: float, **values: Any) -> None:
    """Give the row back to the queue, due in ``delay`` seconds; its job enqueued then."""
    from campaigns import tasks

    queue.enqueue_after_commit(
        tasks.send_transactional, message_id, delay=int(max(delay, 0.0) * 1000)
    )
    _write(
        message_id,
        token,
        status=_QUEUED,
        claim_token=None,
        claimed_at=None,
        smtp_started_at=None,
        due_at=utcnow() + timedelta(seconds=delay),
        **values,
    )


def _render(row: TransactionalMessage) -> RenderedMessage:
    """The row's message; raises RecipientError or TemplateError (the message's own)."""
    from campaigns.transactional import contact_for_address

    contact = contact_for_address(row.account_id, row.to_email)
    name = row.to_name or (contact.name if contact is not None else "")
    attributes = (contact.attributes or {}) if contact is not None else {}
    compiled = compile_transactional(subject=row.subject, html=row.html_body, text=row.text_body)
    sender = TransactionalSender(
        from_name=row.from_name,
        from_email=row.from_email,
        reply_to=row.reply_to,
        dkim=dkim_for(row.account_id, row.from_email),
        return_path=str(setting("RETURN_PATH")),
    )
    return render_transactional(
        compiled,
        sender,
        Recipient(row.id, row.to_email, name, attributes),
        dict(row.data or {}),
        str(current_app.config["SECRET_KEY"]),
    )


def deliver(message_id: int) -> str:
    """Send one queued transactional message if it is due and no one holds it; returns what
    happened (``sent``, ``failed``, ``deferred``, ``skipped``). Safe to run twice or
    concurrently (the claim). Commits."""
    from campaigns.transactional import contact_for_address, refusal_for

    now = utcnow()
    token = _claim(message_id, now)
    if token is None:
        _wake_when_due(message_id, now)
        return "skipped"
    row = db.session.get(TransactionalMessage, message_id)
    assert row is not None  # claimed just now
    refusal = refusal_for(
        row.account_id, row.to_email, contact_for_address(row.account_id, row.to_email)
    )
    if refusal is not None:
        _fail(message_id, token, f"not sent: {refusal}")
        return "failed"
    try:
        rendered = _render(row)
    except (RecipientError, TemplateError) as exc:
        _fail(message_id, token, str(exc))
        return "failed"
    servers = account_servers(row.account_id)
    server = servers[message_id % len(servers)]
    if not _within_limits(row, server):
        _again_later(message_id, token, 1.0)
        return "deferred"
    return _send(row, token, server, rendered)


def _wake_when_due(message_id: int, now: datetime) -> None:
    """A job that came before its row's due time (a clock apart) comes back then; commit."""
    from campaigns import tasks

    due = db.session.scalar(
        select(TransactionalMessage.due_at).where(
            TransactionalMessage.id == message_id,
            TransactionalMessage.status == _QUEUED,
            TransactionalMessage.claim_token.is_(None),
        )
    )
    if due is not None and due > now:
        delay = int((due - now).total_seconds() * 1000) + 1
        queue.enqueue_after_commit(tasks.send_transactional, message_id, delay=delay)
    db.session.commit()


def _within_limits(row: TransactionalMessage, server: Server) -> bool:
    """Wait for the account's and the server's rates (at most a quarter of the claim's
    lease, so the claim stays live); False when they did not allow a send in that time."""
    settings = db.session.get(SendingSettings, row.account_id)
    account_rate = settings.max_per_second if settings else 0.0
    deadline = time.time() + float(setting("SEND_CLAIM_TIMEOUT")) / 4
    throttle = current_throttle()
    return throttle.wait_for_rate(
        f"account:{row.account_id}", account_rate, deadline
    ) and throttle.wait_for_rate(f"server:{server.id}", server.max_per_second, deadline)


def _send(row: TransactionalMessage, token: str, server: Server, rendered: RenderedMessage) -> str:
    message_id, account_id = row.id, row.account_id
    settings = db.session.get(SendingSettings, account_id)
    domain_limit = settings.max_per_domain if settings else 0
    domain = row.to_email.rpartition("@")[2].lower()
    attempts = row.attempts + 1
    with current_throttle().domain_slot(account_id, domain, domain_limit) as free:
        if not free:
            _again_later(message_id, token, 5.0)
            return "deferred"
        _write(message_id, token, smtp_started_at=utcnow(), attempts=attempts)
        try:
            with server_connection(server) as conn:
                conn.send(rendered.wire, rendered.envelope_from, [rendered.recipient])
        except OutcomeUnknownError:
            _fail(message_id, token, INTERRUPTED)
            return "failed"
        except UnsupportedByServerError as exc:
            _fail(message_id, token, str(exc))
            return "failed"
        except PermanentMailError as exc:
            if exc.stage == "sender":
                _fail(message_id, token, f"the SMTP server refused the sender ({smtp_status(exc)})")
                return "failed"
            _fail(message_id, token, f"refused by the receiving server ({smtp_status(exc)})")
            _suppress(account_id, row.to_email, "hard_bounce")
            return "failed"
        except TransientMailError as exc:  # a deferral (4xx) or a transport error
            if attempts >= int(setting("SEND_MAX_ATTEMPTS")):
                _fail(message_id, token, f"gave up after {attempts} attempts: {smtp_status(exc)}")
                return "failed"
            _again_later(
                message_id, token, retry_delay(attempts), error=f"deferred: {smtp_status(exc)}"
            )
            return "deferred"
    _write(
        message_id,
        token,
        EventType.MESSAGE_SENT,
        status=TransactionalStatus.SENT,
        sent_at=utcnow(),
        smtp_message_id=rendered.message_id_header,
        error=None,
        claim_token=None,
        **_CLEARED,
    )
    return "sent"


def _suppress(account_id: int, address: str, reason: str) -> None:
    from subscribers.suppression import suppress

    suppress(account_id, address, reason)
    db.session.commit()


def recover(now: datetime) -> tuple[int, int]:
    """Repair transactional sending from the database; commits. Returns (interrupted,
    requeued): dead workers' claims (not renewed for ``SEND_CLAIM_TIMEOUT``) fail as
    interrupted when their SMTP exchange had begun, else go back to the queue; queued rows
    due for that long with no claim (their queue message was lost) are enqueued again."""
    from campaigns import tasks

    stale_before = now - timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
    dead = (
        TransactionalMessage.status == _QUEUED,
        TransactionalMessage.claim_token.is_not(None),
        TransactionalMessage.claimed_at < stale_before,
    )
    interrupted = rowcount(
        db.session.execute(
            update(TransactionalMessage)
            .where(*dead, TransactionalMessage.smtp_started_at.is_not(None))
            .values(
                status=TransactionalStatus.FAILED,
                claim_token=None,
                error=INTERRUPTED,
                failed_at=now,
                **_CLEARED,
            )
        )
    )
    returned = db.session.scalars(select(TransactionalMessage.id).where(*dead)).all()
    lost = db.session.scalars(
        select(TransactionalMessage.id).where(
            TransactionalMessage.status == _QUEUED,
            TransactionalMessage.claim_token.is_(None),
            TransactionalMessage.due_at < stale_before,
        )
    ).all()
    # Due now and enqueued: not taken for lost again before another lease has passed.
    if returned:
        db.session.execute(
            update(TransactionalMessage)
            .where(TransactionalMessage.id.in_(returned), *dead)
            .values(claim_token=None, claimed_at=None, due_at=now)
        )
    if lost:
        db.session.execute(
            update(TransactionalMessage)
            .where(
                TransactionalMessage.id.in_(lost),
                TransactionalMessage.status == _QUEUED,
                TransactionalMessage.claim_token.is_(None),
            )
            .values(due_at=now)
        )
    again = [*returned, *lost]
    for message_id in again:
        queue.enqueue_after_commit(tasks.send_transactional, message_id)
    db.session.commit()
    return interrupted, len(again)
