"""Delivering events: one attempt at a time, retried with backoff, restart-safe.

An attempt claims its row (``pending`` and due -> ``sending``, one UPDATE, so a duplicate
queue message or a second worker does nothing), commits, checks the target again
(``webhooks.targets``: the address rule and DNS at delivery time), signs and POSTs, then writes
the outcome. A 2xx succeeds. Anything else is a failure: the next attempt is scheduled by
:data:`RETRY_SCHEDULE` with +-10 % jitter (the Standard Webhooks example: 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 14 h, 20 h, 24 h, about three days in all), after the last one the delivery
is ``failed``. An endpoint is disabled, and the account's owners emailed, after
``WEBHOOKS_DISABLE_AFTER_FAILURES`` consecutive failed attempts, after failing every attempt
for ``WEBHOOKS_DISABLE_AFTER_DAYS``, or at once when it answers 410 Gone (the spec's "stop
sending").

Restart-safe: the database holds the state. A first attempt is enqueued when the emitting
transaction commits; :func:`reconcile` (a scheduler job, every ``RECONCILE_INTERVAL_SECONDS``)
enqueues every pending delivery that is due: the retries (no delayed queue message is kept
anywhere but in the table), a lost queue message, a broker that was down at commit; and gives
back rows left ``sending`` by a dead worker. A retry is therefore made up to that interval
after its time.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update

from core import db, queue
from core.db import utcnow
from core.logsafe import log_failure
from core.mail import send_system_mail
from core.settings import setting
from webhooks import signing, targets
from webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSecret,
)

log = logging.getLogger(__name__)

#: Seconds before each retry (attempt 2, 3, ...); len + 1 attempts in all.
RETRY_SCHEDULE: tuple[int, ...] = (
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.1


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta | None:
    """How long after failed attempt number ``attempts`` the next one is made (None: that was
    the last). Jittered by up to +-10 %."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * factor)


def body_bytes(event: WebhookEvent) -> bytes:
    """The body as sent and signed: the payload as compact JSON (UTF-8, keys sorted)."""
    return json.dumps(
        event.payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode()


def active_secrets(endpoint_id: int, now: datetime) -> list[str]:
    """The endpoint's secrets that still sign (newest first)."""
    rows = db.session.scalars(
        select(WebhookSecret)
        .where(
            WebhookSecret.endpoint_id == endpoint_id,
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
        )
        .order_by(WebhookSecret.id.desc())
    )
    return [row.secret for row in rows]


def _claim(delivery_id: int, now: datetime) -> bool:
    result = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
        )
        .values(status=DeliveryStatus.SENDING, last_attempt_at=now)
    )
    db.session.commit()
    return bool(getattr(result, "rowcount", 0))


def attempt(delivery_id: int) -> str | None:
    """Make one attempt of the delivery if it is pending and due; commits. Returns its status
    afterwards (None when there was nothing to do). Never raises for the receiver's faults."""
    now = utcnow()
    if not _claim(delivery_id, now):
        return None
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    event = db.session.get(WebhookEvent, delivery.event_id)
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
    if event is None or endpoint is None:
        return None
    delivery.attempts += 1
    if not endpoint.enabled and event.type != EventType.TEST:
        _finish(delivery, DeliveryStatus.FAILED, None, "the endpoint is disabled", now)
        db.session.commit()
        return DeliveryStatus.FAILED.value
    answer = _send(endpoint, event, now)
    if answer.status is not None and 200 <= answer.status < 300:
        _finish(delivery, DeliveryStatus.SUCCEEDED, answer.status, "", utcnow())
        db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)
            .values(consecutive_failures=0, failing_since=None)
        )
        db.session.commit()
        return DeliveryStatus.SUCCEEDED.value
    return _failed(delivery, endpoint, answer)


def _send(endpoint: WebhookEndpoint, event: WebhookEvent, now: datetime) -> targets.Answer:
    try:
        target = targets.resolve(endpoint.url)
    except targets.TargetRefused as exc:
        return targets.Answer(None, str(exc))
    secrets_in_use = active_secrets(endpoint.id, now)
    body = body_bytes(event)
    stamp = int(now.replace(tzinfo=UTC).timestamp())
    headers = signing.headers(secrets_in_use, event.public_id, stamp, body.decode())
    # The session's connection is not held across the request (a slow receiver must not keep
    # a database transaction open).
    db.session.commit()
    return targets.post(target, body, headers, float(setting("WEBHOOKS_TIMEOUT_SECONDS")))


def _finish(
    delivery: WebhookDelivery,
    status: DeliveryStatus,
    code: int | None,
    error: str,
    now: datetime,
) -> None:
    delivery.status = status
    delivery.last_status_code = code
    delivery.last_error = error[:300]
    delivery.next_attempt_at = None
    delivery.finished_at = now


def _failed(delivery: WebhookDelivery, endpoint: WebhookEndpoint, answer: targets.Answer) -> str:
    now = utcnow()
    error = answer.excerpt if answer.status is None else f"answered {answer.status}"
    if answer.status is not None and answer.excerpt.strip():
        error += ": " + answer.excerpt.strip()
    delay = retry_delay(delivery.attempts)
    if delay is None:
        _finish(delivery, DeliveryStatus.FAILED, answer.status, error, now)
    else:
        delivery.status = DeliveryStatus.PENDING
        delivery.last_status_code = answer.status
        delivery.last_error = error[:300]
        # No delayed queue message: the reconciler (every RECONCILE_INTERVAL_SECONDS) enqueues
        # it once due, so a retry survives a broker that forgets delayed messages.
        delivery.next_attempt_at = now + delay
    disabled = False
    event = db.session.get(WebhookEvent, delivery.event_id)
    if event is None or event.type != EventType.TEST:
        # In SQL, not read-modify-write: attempts to one endpoint run in parallel.
        db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)
            .values(
                consecutive_failures=WebhookEndpoint.consecutive_failures + 1,
                failing_since=func.coalesce(WebhookEndpoint.failing_since, now),
            )
        )
        db.session.refresh(endpoint)
        reason = _disable_reason(endpoint, answer, now)
        if reason:
            # Only the attempt that turns it off tells the owners.
            result = db.session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.enabled.is_(True))
                .values(enabled=False, disabled_reason=reason)
            )
            disabled = bool(getattr(result, "rowcount", 0))
    db.session.commit()
    if disabled:
        from webhooks import events

        events.forget(endpoint.account_id)
        notify_owners_disabled(endpoint.id)
    return delivery.status.value


def _disable_reason(endpoint: WebhookEndpoint, answer: targets.Answer, now: datetime) -> str:
    if answer.status == 410:
        return "The endpoint answered 410 Gone."
    limit = int(setting("WEBHOOKS_DISABLE_AFTER_FAILURES"))
    if endpoint.consecutive_failures >= limit:
        return f"{endpoint.consecutive_failures} delivery attempts in a row failed."
    days = int(setting("WEBHOOKS_DISABLE_AFTER_DAYS"))
    if endpoint.failing_since is not None and now - endpoint.failing_since >= timedelta(days=days):
        return f"Every delivery attempt failed for {days} days."
    return ""


def notify_owners_disabled(endpoint_id: int) -> int:
    """Email the account's owners that the endpoint was disabled, and why. Returns how many
    were written to; a mail that fails is logged, not raised."""
    from accounts.queries import owner_emails
    from core.urls import external_url

    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        return 0
    link = external_url("webhooks.endpoint_page", endpoint_id=endpoint.id)
    text = (
        "Envoy stopped sending webhooks to one of your endpoints:\n\n"
        f"  {endpoint.url}\n\n"
        f"Why: {endpoint.disabled_reason}\n\n"
        "Events that happen while it is disabled are not sent to it. Fix the receiver, then "
        f"enable the endpoint again and retry the failed deliveries here:\n{link}\n"
    )
    sent = 0
    for address in owner_emails(endpoint.account_id):
        try:
            send_system_mail(address, "A webhook endpoint was disabled", text)
            sent += 1
        except Exception as exc:
            log_failure(log, exc, "could not tell an owner that a webhook endpoint was disabled")
    return sent


def reconcile(now: datetime) -> int:
    """Scheduler job: enqueue every due pending delivery, and give back deliveries a dead
    worker left ``sending`` (older than the timeout and a margin). Returns how many were
    enqueued. Safe to run twice: an attempt claims its row first."""
    from webhooks import tasks

    stuck_before = now - timedelta(seconds=int(setting("WEBHOOKS_TIMEOUT_SECONDS")) * 3 + 60)
    db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.SENDING,
            WebhookDelivery.last_attempt_at < stuck_before,
        )
        .values(status=DeliveryStatus.PENDING, next_attempt_at=now)
    )
    due = list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(1000)
        )
    )
    for delivery_id in due:
        queue.enqueue_after_commit(tasks.deliver, delivery_id)
    db.session.commit()
    return len(due)
