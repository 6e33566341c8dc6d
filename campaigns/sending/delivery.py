"""The send loop: one job of a send chain claims rows, renders them ahead in a thread
(:class:`_Prerenderer`), sends them over one SMTP connection within the rate and per-domain
limits, and marks each accepted row ``sent`` from a thread of its own (:class:`_SentMarker`).

What goes wrong is sorted by whose it is. A failure of one recipient (rendering, address, a
refusal, an international address the server cannot take) fails that row with its reason and
the loop goes on; a 5xx refusal is a hard bounce (:func:`campaigns.bounces.record_bounce`) and
a deferral is retried later. A broken template or a refused sender pauses the campaign. A
transport error gives the claim back and retries the chain with backoff, pausing after
``SEND_MAX_TRANSPORT_ERRORS`` in a row. Anything else is the platform's: kept as the
campaign's last error (its kind only) and retried by the queue.

The at-most-once window: a row is marked after the server accepted it, so a worker killed
between the two can leave up to :data:`UNCERTAIN_PER_CLAIM` accepted rows unmarked; the
reconciler (:mod:`campaigns.sending.reconciler`) fails those as interrupted, never resends them.
A connection cut after the end of a message was written and before the server's reply (RFC
1047, :class:`core.mail.OutcomeUnknownError`) is the same case: that row fails as interrupted at
once, and the rest of the claim goes back like any transport error. Claims are leases renewed by
the marker thread (:class:`_SentMarker`), so the reconciler tells a dead worker's claim from a
slow one within ``SEND_CLAIM_TIMEOUT`` seconds.
A worker asked to stop (SIGTERM) finishes the message on the wire, gives back the rest of its
claim at once and enqueues the chain's next job (see :func:`core.queue.stopping`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from queue import Empty, Full, Queue
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from campaigns import webhook_events
from campaigns.bounces import record_bounce
from campaigns.models import (
    AB_HELD,
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    SendingSettings,
)
from campaigns.render import (
    CampaignView,
    Recipient,
    RecipientError,
    RenderedMessage,
    TemplateError,
    render_message,
)
from campaigns.sending.claims import (
    RENEW_SQL,
    claim,
    eligible_recipients,
    mark_row,
    release_claim,
)
from campaigns.sending.rendering import claim_views
from campaigns.sending.servers import account_servers, server_connection
from campaigns.services import pause
from campaigns.settings import setting
from campaigns.throttle import current_throttle
from core import db, queue
from core.db import utcnow
from core.logsafe import error_summary
from core.mail import (
    Connection,
    OutcomeUnknownError,
    PermanentMailError,
    TransientMailError,
    TransportError,
    UnsupportedByServerError,
    smtp_status,
)
from privacy import engine_gate
from webhooks.models import EventType

log = logging.getLogger(__name__)

_UNFINISHED = (MessageStatus.PENDING, MessageStatus.CLAIMED)

#: How many rows of a dead worker's claim may have been accepted by SMTP without their mark
#: being committed: the one in the SMTP exchange and the marks queued behind it
#: (:class:`_SentMarker` keeps at most one waiting while another is being written).
UNCERTAIN_PER_CLAIM = 3

#: The error of a row whose outcome is unknown (a worker killed, or the connection cut, after
#: the message may have been accepted): failed, never resent. Starts with "interrupted".
INTERRUPTED = "interrupted during the SMTP exchange; not resent to avoid a duplicate"


class _SentMarker:
    """Marks accepted messages ``sent`` from a thread of its own, one autocommitted statement
    each, so writing a mark overlaps the next SMTP exchange. At most one mark waits in line
    (``put`` blocks), which bounds the window to :data:`UNCERTAIN_PER_CLAIM` rows.

    The same thread keeps the claim's lease: every ``SEND_CLAIM_TIMEOUT / 4`` seconds it renews
    the claimed rows' ``claimed_at``, whatever the send loop is waiting for (a slow server, a
    rate limit). :meth:`lease_held` is False once no renewal succeeded for half the timeout:
    the loop then stops sending, long before the reconciler takes the claim for a dead one.

    With ``SEND_MARK_DURABILITY=server`` (the default) PostgreSQL acknowledges the commit
    before flushing it to disk (``synchronous_commit=off`` for this connection only): a killed
    worker loses nothing, a crash of the database server itself can lose the marks of its last
    fraction of a second (those messages would be sent again). ``disk`` waits for the flush.
    """

    DRIVER_SQL = (
        "UPDATE messages SET status = 'sent', sent_at = ?, smtp_message_id = ?, "
        "error = NULL, claim_token = NULL WHERE id = ? AND claim_token = ?"
    )

    def __init__(self, campaign_id: int, token: str) -> None:
        self.campaign_id = campaign_id
        self.token = token
        lease = float(setting("SEND_CLAIM_TIMEOUT"))
        self.renew_every = lease / 4
        self.held_for = lease / 2
        self.renewed_at = time.monotonic()  # the claim was committed just now
        engine = db.session.get_bind().engine
        self.connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        postgres = engine.dialect.name == "postgresql"
        self.relaxed = postgres and setting("SEND_MARK_DURABILITY") == "server"
        if self.relaxed:
            self.connection.exec_driver_sql("SET synchronous_commit = off")
        # The driver's own cursor: one mark per message is the send path's most frequent
        # statement, and the SQL layer's per-statement work would double its cost.
        self.cursor: Any = self.connection.connection.cursor()
        self.sql = self.DRIVER_SQL.replace("?", "%s") if postgres else self.DRIVER_SQL
        self.renew_sql = RENEW_SQL.replace("?", "%s") if postgres else RENEW_SQL
        self.stamp: Callable[[datetime], Any] = (
            (lambda value: value)
            if postgres
            else (lambda value: value.strftime("%Y-%m-%d %H:%M:%S.%f"))
        )
        self.waiting: Queue[tuple[int, str, str] | None] = Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sent-marker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            wait = max(0.0, self.renewed_at + self.renew_every - time.monotonic())
            try:
                item = self.waiting.get(timeout=wait)
            except Empty:
                self._renew()
                continue
            if item is None:
                return
            if self.error is not None:
                continue
            message_id, token, smtp_message_id = item
            try:
                self.cursor.execute(
                    self.sql, (self.stamp(utcnow()), smtp_message_id, message_id, token)
                )
            except BaseException as exc:  # reported to the sending thread
                self.error = exc
            if time.monotonic() - self.renewed_at >= self.renew_every:
                self._renew()

    def _renew(self) -> None:
        """Renew the claim's lease; a failure only lets :meth:`lease_held` turn False."""
        if self.error is not None:
            return
        try:
            self.cursor.execute(
                self.renew_sql, (self.stamp(utcnow()), self.campaign_id, self.token)
            )
            self.renewed_at = time.monotonic()
        except Exception as exc:
            log.warning(
                "campaign %s: could not renew a claim (%s)", self.campaign_id, error_summary(exc)
            )

    def lease_held(self) -> bool:
        """True while the claim's lease was renewed within half of ``SEND_CLAIM_TIMEOUT``."""
        return time.monotonic() - self.renewed_at < self.held_for

    def mark(self, message_id: int, token: str, smtp_message_id: str) -> None:
        """Queue the mark of an accepted message; raises a previous mark's error."""
        if self.error is not None:
            raise self.error
        self.waiting.put((message_id, token, smtp_message_id))

    def close(self) -> None:
        """Write every queued mark, then release the connection."""
        self.waiting.put(None)
        self.thread.join()
        try:
            self.cursor.close()
            if self.relaxed:
                self.connection.exec_driver_sql("RESET synchronous_commit")
        finally:
            self.connection.close()
        if self.error is not None:
            log.error("a sent mark failed: %s", error_summary(self.error))


class _Prerenderer:
    """Renders a batch's messages a few steps ahead of SMTP, in a thread of its own, so that
    rendering (CPU) overlaps the waits for the SMTP server. Yields ``(message_id, rendered)``
    in claim order; ``rendered`` is None for a recipient no longer eligible, or the exception
    rendering raised."""

    def __init__(
        self,
        view: Callable[[int], CampaignView],
        recipients: dict[int, Recipient],
        message_ids: list[int],
        verp_key: str,
        payload: Callable[[bytes], bytes],
    ) -> None:
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.view = view
        self.recipients = recipients
        self.message_ids = message_ids
        self.verp_key = verp_key
        self.payload = payload
        self.ready: Queue[tuple[int, RenderedMessage | BaseException | None]] = Queue(maxsize=4)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="prerender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.app.app_context():
            for message_id in self.message_ids:
                recipient = self.recipients.get(message_id)
                item: RenderedMessage | BaseException | None = None
                if recipient is not None:
                    try:
                        rendered = render_message(self.view(message_id), recipient, self.verp_key)
                        item = replace(rendered, payload=self.payload(rendered.wire))
                    except Exception as exc:  # handed to the sending thread
                        item = exc
                while not self.stopping.is_set():
                    try:
                        self.ready.put((message_id, item), timeout=0.2)
                        break
                    except Full:
                        continue
                if self.stopping.is_set():
                    return

    def __iter__(self) -> Iterator[tuple[int, RenderedMessage | BaseException | None]]:
        for _ in self.message_ids:
            yield self.ready.get()

    def close(self) -> None:
        """Stop rendering ahead and wait for the thread."""
        self.stopping.set()
        self.thread.join()


def _stop(ahead: _Prerenderer | None, marker: _SentMarker) -> None:
    """Stop rendering ahead and write the queued sent marks."""
    if ahead is not None:
        ahead.close()
    marker.close()


def _status_of(campaign_id: int) -> str:
    return db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) or ""


def retry_delay(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (a deferral or a transport error): doubling
    from ``SEND_RETRY_BASE_SECONDS``, at most six hours."""
    base = float(setting("SEND_RETRY_BASE_SECONDS"))
    return min(base * (2 ** max(0, attempts - 1)), 6 * 3600.0)


#: While a claim is being sent, the campaign's ``last_outcome_at`` is written at most this often
#: (and at the claim's end): the stall flag sees a slow claim progress without a write per
#: message on the campaign row every chain shares.
OUTCOME_EVERY_SECONDS = 10.0


class _CampaignStop(Exception):
    """Raised in the send loop for a problem of the campaign, not of one recipient (its
    templates, a refused sender): the claim is given back and the campaign paused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _record_outcome(campaign_id: int) -> None:
    """Note that messages reached an outcome just now (the stall flag's clock); commit."""
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(last_outcome_at=utcnow(), last_error="", last_error_at=None)
    )
    db.session.commit()


def _platform_error_text(error: BaseException) -> str:
    """What the campaign page says about a failure of the platform in the send path: the kind
    of error only (its text may quote data, e.g. a statement's parameters)."""
    if isinstance(error, SQLAlchemyError):
        return f"a database error in the worker ({type(error).__name__}); see the worker's log"
    return f"an error in the worker ({type(error).__name__}); see the worker's log"


def _record_send_error(campaign_id: int, text: str) -> None:
    """Keep the last transport or platform error on the campaign, for its stall flag; commit.
    Never raises (the database may be the thing that failed)."""
    try:
        db.session.rollback()
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(last_error=text[:500], last_error_at=utcnow())
        )
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning(
            "campaign %s: could not record a send error (%s)", campaign_id, error_summary(exc)
        )


def _transport_failed(campaign: Campaign, error: Exception, chain: int) -> None:
    """Count a transport error (kept as the campaign's last error); pause after
    ``SEND_MAX_TRANSPORT_ERRORS`` in a row."""
    from campaigns import tasks

    limit = int(setting("SEND_MAX_TRANSPORT_ERRORS"))
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            consecutive_errors=Campaign.consecutive_errors + 1,
            last_error=f"SMTP transport error: {str(error)[:300]}",
            last_error_at=utcnow(),
        )
    )
    errors = db.session.scalar(
        select(Campaign.consecutive_errors).where(Campaign.id == campaign.id)
    )
    log.warning(
        "campaign %s: transport error %s in a row: %s", campaign.id, errors, error_summary(error)
    )
    if (errors or 0) >= limit:
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.SENDING)
            .values(
                status=CampaignStatus.PAUSED,
                pause_reason=(
                    f"Paused after {errors} transport errors in a row; the last: "
                    f"{str(error)[:300]}. Check the SMTP server, then resume."
                ),
            )
        )
    else:
        delay = int(retry_delay(errors or 1) * 1000)
        queue.enqueue_after_commit(tasks.send_batch, campaign.id, chain, delay=delay)
    db.session.commit()


def send_batch(campaign_id: int, chain: int = 0, claims: int = 0) -> int:
    """Send the campaign's due messages claim after claim (``claims`` of them, or as many as
    fit in ``SEND_JOB_SECONDS``), then enqueue the chain's next job. Returns how many messages
    the SMTP server accepted."""
    from campaigns import tasks

    job_deadline = time.monotonic() + float(setting("SEND_JOB_SECONDS"))
    total = 0
    done = 0
    while True:
        campaign = db.session.get(Campaign, campaign_id)
        if campaign is None:
            return total
        db.session.refresh(campaign)
        if campaign.status != CampaignStatus.SENDING:
            return total
        try:
            sent, outcome = _send_one_claim(campaign, chain)
        except Exception as exc:  # a platform failure: retried by the queue, shown on the page
            _record_send_error(campaign_id, _platform_error_text(exc))
            raise
        total += sent
        done += 1
        if outcome == "over":
            return total
        more = claims == 0 or done < claims
        in_time = time.monotonic() < job_deadline and not queue.stopping().is_set()
        if outcome == "complete" and more and in_time:
            continue
        # The chain goes on in the next job (after a stop, another worker's: nothing waits).
        queue.enqueue_after_commit(tasks.send_batch, campaign_id, chain)
        db.session.commit()
        return total


def _send_one_claim(campaign: Campaign, chain: int) -> tuple[int, str]:
    """Claim and send one batch. Returns (accepted, outcome): ``complete`` when every claimed
    row was handled, ``stopped`` when the batch stopped early (pause, cancel, time), ``over``
    when the chain must not go on (nothing due, transport error, broken template)."""
    campaign_id = campaign.id
    now = utcnow()
    token, claimed = claim(campaign_id, int(setting("SEND_BATCH_SIZE")), now, chain)
    message_ids = list(claimed)
    if not message_ids:
        _after_empty_claim(campaign, chain, now)
        return 0, "over"
    servers = account_servers(campaign.account_id)
    server = servers[chain % len(servers)]
    settings = db.session.get(SendingSettings, campaign.account_id)
    account_rate = settings.max_per_second if settings else 0.0
    domain_limit = settings.max_per_domain if settings else 0
    throttle = current_throttle()
    # A worker asked to stop (a deploy's SIGTERM) gives back the rows it has not started, at
    # once, instead of leaving them claimed for the reconciler (SEND_CLAIM_TIMEOUT).
    stopping = queue.stopping()
    # A claim lasts at most one job's time; its lease is renewed meanwhile (_SentMarker).
    deadline = time.time() + float(setting("SEND_JOB_SECONDS"))
    verp_key = str(current_app.config["SECRET_KEY"])
    try:
        view = claim_views(campaign, message_ids)
        recipients = eligible_recipients(campaign, claimed)
    except TemplateError as exc:
        release_claim(token)
        pause(campaign.account_id, campaign.id, f"The templates do not render: {exc}")
        return 0, "over"
    except Exception:
        release_claim(token)  # nothing was sent: the rows go back, none is taken for interrupted
        raise
    sent = 0
    handled = 0
    delivered: list[int] = []
    completed = False
    checked_at = outcome_written_at = time.monotonic()
    account_id = campaign.account_id
    account_key, server_key = f"account:{account_id}", f"server:{server.id}"
    marker = _SentMarker(campaign_id, token)
    ahead: _Prerenderer | None = None
    try:
        with server_connection(server) as conn:
            ahead = _Prerenderer(view, recipients, message_ids, verp_key, conn.payload)
            for message_id, rendered in ahead:
                if time.time() > deadline or stopping.is_set() or not marker.lease_held():
                    break
                now_monotonic = time.monotonic()
                if handled and now_monotonic - outcome_written_at > OUTCOME_EVERY_SECONDS:
                    outcome_written_at = now_monotonic
                    _record_outcome(campaign_id)
                handled += 1
                if rendered is None:
                    mark_row(
                        message_id,
                        token,
                        status=MessageStatus.SKIPPED,
                        error="no longer in the audience",
                    )
                    continue
                if isinstance(rendered, RecipientError):
                    mark_row(
                        message_id, token, status=MessageStatus.FAILED, error=str(rendered)[:500]
                    )
                    continue
                if isinstance(rendered, TemplateError):  # the campaign's, not this contact's
                    raise _CampaignStop(f"The templates do not render: {rendered}")
                if isinstance(rendered, BaseException):
                    raise rendered
                waiting_since = time.monotonic()
                if not throttle.wait_for_rate(
                    account_key, account_rate, deadline, stopping
                ) or not throttle.wait_for_rate(
                    server_key, server.max_per_second, deadline, stopping
                ):
                    break
                # A pause or cancel takes effect within a second, and before any send that
                # had to wait for a rate limit (so a throttled campaign stops at once).
                now_monotonic = time.monotonic()
                if now_monotonic - checked_at > 1.0 or now_monotonic - waiting_since > 0.05:
                    checked_at = now_monotonic
                    if _status_of(campaign_id) != CampaignStatus.SENDING:
                        break
                recipient_of = recipients[message_id]
                # The domain as stored (U-labels), as the engine's pacing knows it.
                domain = recipient_of.email.rpartition("@")[2].lower()
                with throttle.domain_slot(account_id, domain, domain_limit) as free:
                    if not free:
                        mark_row(
                            message_id,
                            token,
                            status=MessageStatus.PENDING,
                            due_at=utcnow() + timedelta(seconds=5),
                            claimed_at=None,
                        )
                        continue
                    if _deliver(
                        conn, rendered, message_id, token, marker, account_id, recipient_of
                    ):
                        sent += 1
                        delivered.append(message_id)
            else:
                completed = True  # no break: every claimed row was handled
    except TransportError as exc:
        _stop(ahead, marker)
        release_claim(token)
        _transport_failed(campaign, exc, chain)
        return sent, "over"
    except _CampaignStop as stop:
        _stop(ahead, marker)
        release_claim(token)
        if _status_of(campaign_id) == CampaignStatus.SENDING:
            pause(campaign.account_id, campaign_id, stop.reason)
        return sent, "over"
    except Exception:
        _stop(ahead, marker)
        release_claim(token)
        raise
    _stop(ahead, marker)
    release_claim(token)  # rows not reached (paused, cancelled, deadline, worker stopping)
    # engine input: the claim's deliveries, recorded by an engine job after this commit, so the
    # send path does no engine work per message and holds no engine row lock across sends.
    engine_gate.record_deliveries_soon(campaign.account_id, delivered)
    # webhooks: message.sent for the claim's deliveries (nothing when no endpoint listens).
    webhook_events.messages_sent(campaign.account_id, campaign_id, delivered)
    if sent and campaign.consecutive_errors:
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(consecutive_errors=0)
        )
    now = utcnow()
    values: dict[str, Any] = {"last_progress_at": now}
    if handled:
        values.update(last_outcome_at=now, last_error="", last_error_at=None)
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    db.session.commit()
    return sent, "complete" if completed else "stopped"


def _deliver(
    conn: Connection,
    rendered: RenderedMessage,
    message_id: int,
    token: str,
    marker: _SentMarker,
    account_id: int,
    recipient: Recipient,
) -> bool:
    """Send one message and mark its row by the SMTP outcome; True when accepted.

    A refusal of this recipient or this message fails the row with its reason (a 5xx is a hard
    bounce); a message the server cannot take (an international address without SMTPUTF8)
    fails it without a bounce. TransportError propagates (the row is still ``claimed`` and goes
    back to pending; after the end of the message left, OutcomeUnknownError, it is failed as
    interrupted first); a 5xx refusal of the sender raises _CampaignStop (no recipient's fault).
    """
    try:
        conn.send(rendered.wire, rendered.envelope_from, [rendered.recipient], rendered.payload)
    except OutcomeUnknownError:
        # RFC 1047: the server may have accepted it. At most once, as for a killed worker:
        # failed as interrupted, never resent; the claim's other rows go back (TransportError).
        mark_row(message_id, token, status=MessageStatus.FAILED, error=INTERRUPTED)
        raise
    except UnsupportedByServerError as exc:
        mark_row(message_id, token, status=MessageStatus.FAILED, error=str(exc))
        return False
    except PermanentMailError as exc:
        if exc.stage == "sender":
            raise _CampaignStop(
                f"The SMTP server refused the sender address ({smtp_status(exc)}). "
                "Check the sender and the server, then resume."
            ) from exc
        mark_row(
            message_id,
            token,
            status=MessageStatus.FAILED,
            error=f"refused by the receiving server ({smtp_status(exc)})",
        )
        record_bounce(message_id, "hard", "smtp", smtp_status(exc))
        return False
    except TransportError:
        raise
    except TransientMailError as exc:
        attempts = int(
            db.session.scalar(select(Message.attempts).where(Message.id == message_id)) or 0
        )
        attempts += 1
        if attempts >= int(setting("SEND_MAX_ATTEMPTS")):
            mark_row(
                message_id,
                token,
                status=MessageStatus.FAILED,
                attempts=attempts,
                error=f"gave up after {attempts} deferrals: {smtp_status(exc)}",
            )
            record_bounce(message_id, "soft", "smtp", smtp_status(exc))
        else:
            # engine input: a deferral teaches per-domain pacing.
            engine_gate.record_delivery_outcome(
                account_id, None, recipient.email, "deferred", utcnow()
            )
            mark_row(
                message_id,
                token,
                status=MessageStatus.PENDING,
                attempts=attempts,
                claimed_at=None,
                due_at=utcnow() + timedelta(seconds=retry_delay(attempts)),
                error=f"deferred: {smtp_status(exc)}",
            )
        return False
    marker.mark(message_id, token, rendered.message_id_header)
    return True


def _after_empty_claim(campaign: Campaign, chain: int, now: datetime) -> None:
    """Nothing due: wake up when the next retry is due, or finish the campaign."""
    from campaigns import tasks

    # Only rows due later: rows due now that this claim did not get are another chain's
    # (locked by its claim), and that chain sends them.
    next_due = db.session.scalar(
        select(func.min(Message.due_at)).where(
            Message.campaign_id == campaign.id,
            Message.status == MessageStatus.PENDING,
            Message.due_at > now,
            Message.due_at < AB_HELD,  # held for an A/B test's winner: released by it
        )
    )
    if next_due is not None:  # each chain waits for the retries (at most one job per chain)
        delay = max(1.0, (next_due - now).total_seconds())
        queue.enqueue_after_commit(
            tasks.send_batch, campaign.id, chain, delay=int(min(delay, 3600) * 1000)
        )
        db.session.commit()
        return
    finish_if_done(campaign)


def finish_if_done(campaign: Campaign) -> None:
    """Mark a sending campaign ``sent`` when none of its rows is pending or claimed; commit."""
    unfinished = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign.id, Message.status.in_(_UNFINISHED))
    )
    if not unfinished:
        finished = db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.SENDING)
            .values(status=CampaignStatus.SENT, finished_at=utcnow())
        )
        if getattr(finished, "rowcount", 0):
            webhook_events.campaign_event(campaign, EventType.CAMPAIGN_FINISHED)
    db.session.commit()
